"""Hash-family specifications and LSH bucket tables; imports _hash, _tables, _openmp, _openmp_env, _validate and checks (never the model).

A specification (:class:`SimHash`, :class:`WTA`, :class:`DWTA`,
:class:`DOPH`) holds K (bits or codes per table), L (tables) and a seed; its
``compile(dim)`` draws the random parameters for one input dimension and
returns a ``CompiledFamily`` whose ``hash_dense`` / ``hash_sparse`` give every
row L bucket ids. :class:`LSHTables` keeps, for each of the L tables and each
bucket, up to ``bucket_size`` item ids, filled by ``build`` and queried by
``query``.

Every family's bucket id of one table packs K codes of ``code_bits`` bits in
disjoint bit fields, so a table has exactly ``2 ** (K * code_bits)`` buckets
and the tables are sized by that range, never more.

Limits (they bound the per-row scratch on the stack so the row kernels need
no allocation): ``L * K <= 4096``, ``K * code_bits <= 24``, WTA/DWTA
``bin_size`` a power of two in [2, 64].
"""
import math
import numbers
import threading
from contextlib import contextmanager, nullcontext

import numpy as np
import scipy.sparse as sp

from . import _hash, _tables
from ._openmp import resolve_threads
from ._openmp_env import note_threads
from ._validate import integer
from .checks import check_features, non_finite_error

__all__ = ["SimHash", "WTA", "DWTA", "DOPH", "LSHTables", "estimate_table_bytes",
           "family_from_config", "family_class"]

MAX_HASH_FUNCTIONS = _hash.LIMIT_HASH_FUNCTIONS
MAX_BIN_SIZE = _hash.LIMIT_BIN_SIZE
MAX_CODE_BITS = _hash.LIMIT_CODE_BITS
# Attempts of the universal-hash densification before falling back to the
# nearest non-empty bin (DWTA, DOPH).
DENSIFY_PROBES = 32
# Sparse SimHash keeps its +-1 projections as a dense (dim, L*K) float32
# matrix up to this many entries (64 MiB), an inverse map beyond.
DENSE_SPARSE_SIMHASH_FLOATS = 1 << 24


# ---------------------------------------------------------------------------
# Argument validation helpers
# ---------------------------------------------------------------------------

def _int_arg(value, name, minimum=None, maximum=None, hint=""):
    return integer(value, name, minimum, maximum, hint=hint)


def _seed_arg(seed):
    return _int_arg(seed, "seed", minimum=0, maximum=2**63 - 1)


def _threads(threads):
    return note_threads(resolve_threads(threads, "threads"))


def _available_memory_bytes():
    """MemAvailable from /proc/meminfo, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _check_memory(n_bytes, what, advice):
    available = _available_memory_bytes()
    if available is not None and n_bytes > available:
        raise MemoryError(
            f"{what} would need about {n_bytes / 2**30:.2f} GiB but only "
            f"{available / 2**30:.2f} GiB of memory is available; {advice}")


def _as_dense_rows(X, dim, name):
    """float32 C-contiguous (n, dim) rows of X, validated (not for
    finiteness: see _check_finite_dense)."""
    return check_features(X, dim, name, accept="dense", check_finite=False,
                          expected_by="the hash family")


# Arrays smaller than this are scanned / copied by one thread: waking a
# team costs more than the work (and much more on a loaded machine).
_SERIAL_BELOW = 1 << 20


def _check_finite_dense(X, name, n_threads):
    if X.size <= _SERIAL_BELOW:
        n_threads = 1
    if X.size and not _hash._all_finite(X.reshape(-1), n_threads):
        raise non_finite_error(X, name)


def _as_csr_rows(X, dim, name):
    """(indptr int64, indices int32, data float32) of canonical CSR rows."""
    X = check_features(X, dim, name, accept="sparse", widen=False,
                       expected_by="the hash family")
    return (np.ascontiguousarray(X.indptr, dtype=np.int64),
            np.ascontiguousarray(X.indices, dtype=np.int32), X.data)


_CONTROLLER = None


def _blas_threads(n_threads):
    """Context limiting BLAS to n_threads (None: leave BLAS alone)."""
    global _CONTROLLER
    if n_threads is None:
        return nullcontext()
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=n_threads, user_api="blas")


# ---------------------------------------------------------------------------
# Family specifications
# ---------------------------------------------------------------------------

class CompiledFamily(_hash.CompiledFamily):
    """A hash family with its random parameters drawn for one input dimension.

    Made by ``SimHash(...).compile(dim)`` (and the other specifications);
    not constructed directly. The C structure and its loops are the kernel
    module ``_hash``'s; the argument checks are here, before calling in.
    """

    __slots__ = ()

    def hash_dense(self, X, threads=None):
        """Bucket ids of dense rows.

        Parameters
        ----------
        X : array_like, shape (n, dim)
            Real, finite values (converted to float32 C order once).
        threads : int or None
            OpenMP threads (and BLAS threads for Gaussian SimHash).

        Returns
        -------
        ndarray of int32, shape (n, L)
            Bucket id of each row in each table, in ``[0, n_buckets)``.
        """
        X = _as_dense_rows(X, self.dim, "X")
        n_threads = _threads(threads)
        out = np.empty((X.shape[0], self.L), dtype=np.int32)
        _check_finite_dense(X, "X", n_threads)
        with _blas_threads(1 if "proj_t" in self.arrays else None):
            _hash._hash_dense_into(self, X, out, n_threads)
        return out

    def hash_sparse(self, X, threads=None):
        """Bucket ids of CSR rows; identical to ``hash_dense(X.toarray())``.

        Parameters
        ----------
        X : scipy.sparse matrix, shape (n, dim)
            Converted to canonical CSR (sorted indices, duplicates summed).
        threads : int or None
            OpenMP threads.

        Returns
        -------
        ndarray of int32, shape (n, L)
        """
        indptr, indices, data = _as_csr_rows(X, self.dim, "X")
        n_threads = _threads(threads)
        out = np.empty((indptr.shape[0] - 1, self.L), dtype=np.int32)
        _hash._hash_sparse_into(self, indptr, indices, data, out, n_threads)
        return out


class _FamilySpec:
    """Common validation of K, L, seed; subclasses draw the parameters."""

    name = "family"

    def __init__(self, K, L, seed):
        self.K = _int_arg(K, "K", minimum=1)
        self.L = _int_arg(L, "L", minimum=1)
        self.seed = _seed_arg(seed)
        if self.K * self.L > MAX_HASH_FUNCTIONS:
            raise ValueError(
                f"K * L = {self.K * self.L} exceeds {MAX_HASH_FUNCTIONS} hash "
                f"functions (the per-row scratch limit); use fewer tables L or a "
                f"smaller K")

    def _check_code_bits(self, code_bits, per_code):
        if self.K * code_bits > MAX_CODE_BITS:
            max_k = MAX_CODE_BITS // code_bits
            raise ValueError(
                f"K = {self.K} gives {self.K * code_bits}-bit bucket ids "
                f"({per_code}); the limit is {MAX_CODE_BITS} bits "
                f"(2^{MAX_CODE_BITS} buckets per table): use K <= {max_k}")

    def _check_dim(self, dim):
        return _int_arg(dim, "dim", minimum=1, maximum=2**31 - 1)

    def _rng(self):
        return np.random.default_rng(self.seed)

    def compile(self, dim):
        """Draw the family's random parameters for inputs of dimension ``dim``.

        Returns
        -------
        CompiledFamily
            With ``hash_dense`` / ``hash_sparse`` and attributes ``kind``,
            ``K``, ``L``, ``dim``, ``n_buckets``.
        """
        raise NotImplementedError

    def n_buckets_for(self, dim=None):
        """Buckets per table once compiled, ``2 ** (K * code_bits)``."""
        return 2 ** (self.K * self._code_bits(dim))

    def get_config(self):
        """JSON-able description; :func:`family_from_config` inverts it."""
        return {"family": type(self).__name__, **self.__dict__}

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(sorted(self.__dict__.items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({args})"


def _inverse_map(dims_of_function, entry_codes, dim):
    """CSR over input dims: for dim j, entry codes of the functions reading it.

    Returns (dim_ptr int64 (dim + 1,), entries int32).
    """
    flat_dims = dims_of_function.reshape(-1)
    order = np.argsort(flat_dims, kind="stable")
    entries = np.ascontiguousarray(entry_codes.reshape(-1)[order], dtype=np.int32)
    counts = np.bincount(flat_dims, minlength=dim)
    dim_ptr = np.zeros(dim + 1, dtype=np.int64)
    np.cumsum(counts, out=dim_ptr[1:])
    return dim_ptr, entries


class SimHash(_FamilySpec):
    """Signed random projections: K sign bits per table, ``2**K`` buckets.

    Parameters
    ----------
    K : int
        Bits per table (1 to 24).
    L : int
        Tables.
    density : float or None
        None: dense Gaussian N(0, 1) projections (batches hashed with sgemm).
        0 < density <= 1: SLIDE's sparse projections, each with +-1 signs on
        ``ceil(density * dim)`` distinct random dims (e.g. 1/3).
    seed : int
        Seed of the projections.

    Notes
    -----
    Bit k of table l is ``x . p_{lK+k} > 0``; two vectors at angle theta agree
    on a bit with probability ``1 - theta / pi``.
    """

    name = "simhash"

    def __init__(self, K=9, L=50, density=None, seed=0):
        """Check ``K``, ``L``, ``density`` and ``seed``; the random draws
        (from ``seed``) are made by ``compile(dim)`` for an input width."""
        super().__init__(K, L, seed)
        if density is not None:
            if isinstance(density, bool) or not isinstance(density, numbers.Real):
                raise TypeError(f"density must be None or a float in (0, 1], got {density!r}")
            density = float(density)
            if not (0.0 < density <= 1.0):
                raise ValueError(
                    f"density must be None (Gaussian projections) or in (0, 1], got {density}")
        self.density = density
        self._check_code_bits(1, "one bit per projection")

    def _code_bits(self, dim=None):
        return 1

    def compile(self, dim):
        dim = self._check_dim(dim)
        n_hashes = self.K * self.L
        rng = self._rng()
        if self.density is None:
            _check_memory(4 * n_hashes * dim, f"SimHash projections ({n_hashes} x {dim})",
                          "use a smaller K * L or SimHash(density=...)")
            projections = rng.standard_normal((n_hashes, dim), dtype=np.float32)
            proj_t = np.ascontiguousarray(projections.T)
            proj_t.flags.writeable = False
            return CompiledFamily(self, "simhash", self.K, self.L, dim, 1,
                                        proj_t=proj_t)
        n_nonzero = min(dim, max(1, math.ceil(self.density * dim)))
        _check_memory(12 * n_hashes * n_nonzero,
                      f"sparse SimHash projections ({n_hashes} x {n_nonzero})",
                      "use a smaller density or K * L")
        proj_dims = np.empty((n_hashes, n_nonzero), dtype=np.int32)
        for p in range(n_hashes):
            proj_dims[p] = np.sort(rng.choice(dim, size=n_nonzero, replace=False))
        proj_signs = np.where(rng.random((n_hashes, n_nonzero)) < 0.5, -1, 1).astype(np.int8)
        arrays = dict(proj_dims=proj_dims, proj_signs=proj_signs)
        if dim * n_hashes <= DENSE_SPARSE_SIMHASH_FLOATS:
            # Small enough to store densely (+-1 and zeros): rows then hash
            # with vectorised / sgemm kernels, bit-identical to the sparse
            # walk (adding v * 0 changes no sum).
            proj_t = np.zeros((dim, n_hashes), dtype=np.float32)
            proj_t[proj_dims.ravel(), np.repeat(np.arange(n_hashes), n_nonzero)] = \
                proj_signs.ravel()
            arrays["proj_t"] = proj_t
        else:
            entry_codes = (2 * np.arange(n_hashes, dtype=np.int64)[:, None]
                           + (proj_signs < 0)).astype(np.int32)
            arrays["dim_ptr"], arrays["dim_entries"] = _inverse_map(proj_dims, entry_codes, dim)
        for a in arrays.values():
            a.flags.writeable = False
        return CompiledFamily(self, "sparse_simhash", self.K, self.L, dim, 1,
                                    **arrays)


def _check_bin_size(bin_size):
    bin_size = _int_arg(bin_size, "bin_size", minimum=2, maximum=MAX_BIN_SIZE)
    if bin_size & (bin_size - 1):
        raise ValueError(f"bin_size must be a power of two in [2, {MAX_BIN_SIZE}], got {bin_size}")
    return bin_size


class WTA(_FamilySpec):
    """Winner-take-all hashing (dense inputs): rank order of random bins.

    Each of the L*K codes looks at a bin of ``bin_size`` distinct dims (bins
    are consecutive slices of random permutations of the dims) and is the
    position of the largest value in it (ties: the first). K codes of
    ``log2(bin_size)`` bits each make a table's bucket id, so a table has
    ``bin_size ** K`` buckets.

    Parameters
    ----------
    K : int
        Codes per table; ``K * log2(bin_size) <= 24``.
    L : int
        Tables.
    bin_size : int
        Dims per bin, a power of two in [2, 64], at most ``dim``.
    seed : int
    """

    name = "wta"
    _kind = "wta"

    def __init__(self, K=6, L=50, bin_size=8, seed=0):
        """Check ``K``, ``L``, ``bin_size`` and ``seed``; the random draws
        (from ``seed``) are made by ``compile(dim)`` for an input width."""
        super().__init__(K, L, seed)
        self.bin_size = _check_bin_size(bin_size)
        self._check_code_bits(self._code_bits(),
                              f"{self._code_bits()} bits per code with bin_size={self.bin_size}")

    def _code_bits(self, dim=None):
        return int(self.bin_size).bit_length() - 1

    def compile(self, dim):
        dim = self._check_dim(dim)
        if self.bin_size > dim:
            raise ValueError(
                f"bin_size = {self.bin_size} exceeds the input dimension {dim}; "
                f"use bin_size <= {dim}")
        n_hashes = self.K * self.L
        bins_per_perm = dim // self.bin_size
        n_perms = -(-n_hashes // bins_per_perm)
        _check_memory(4 * (n_hashes * self.bin_size * 3 + dim),
                      f"{type(self).__name__} bins", "use a smaller K * L")
        rng = self._rng()
        # Each bin is a slice of one permutation, so its dims are distinct.
        bin_dims = np.empty((n_hashes, self.bin_size), dtype=np.int32)
        done = 0
        for _ in range(n_perms):
            perm = rng.permutation(dim).astype(np.int32)
            take = min(bins_per_perm, n_hashes - done)
            bin_dims[done:done + take] = perm[:take * self.bin_size].reshape(take, self.bin_size)
            done += take
        entry_codes = (np.arange(n_hashes, dtype=np.int64)[:, None] * MAX_BIN_SIZE
                       + np.arange(self.bin_size)[None, :]).astype(np.int32)
        dim_ptr, entries = _inverse_map(bin_dims, entry_codes, dim)
        arrays = dict(bin_dims=bin_dims, dim_ptr=dim_ptr, dim_entries=entries)
        for a in arrays.values():
            a.flags.writeable = False
        return CompiledFamily(
            self, self._kind, self.K, self.L, dim, self._code_bits(),
            bin_size=self.bin_size, max_probes=DENSIFY_PROBES,
            seed=self._densify_seed(), **arrays)

    def _densify_seed(self):
        # Distinct from the stream that drew the bins.
        return (self.seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64


class DWTA(WTA):
    """Densified winner-take-all (sparse inputs; SLIDE's default family).

    Like :class:`WTA`, but only nonzero values compete in a bin; a bin with no
    nonzero borrows the code of another bin: attempt t of bin c looks at bin
    ``h(c, t)`` (a seeded hash, the same for every row) and takes the code of
    the first originally non-empty one; after 32 failed attempts the nearest
    originally non-empty bin to the right (circularly) lends its code; a row
    with no nonzero in any bin gets code 0. Codes are packed in disjoint
    ``log2(bin_size)``-bit fields (``bin_size ** K`` buckets per table).
    """

    name = "dwta"
    _kind = "dwta"


class DOPH(_FamilySpec):
    """Densified one-permutation minhash (sparse binary inputs).

    One random permutation of the dims is cut into L*K bins of
    ``ceil(dim / (L*K))`` consecutive permuted positions. The code of a bin
    is the low ``bits`` bits of the smallest permuted position among the
    row's nonzeros falling into it (values are ignored: a row is the set of
    its nonzeros). Empty bins are densified as in :class:`DWTA`. A table
    packs K codes: ``2 ** (K * bits)`` buckets.

    Parameters
    ----------
    K : int
        Codes per table.
    L : int
        Tables.
    bits : int or None
        Bits kept of each code, ``K * bits <= 24``; None: ``min(8, 16 // K)``
        (at least 1), i.e. at most 65,536 buckets per table. Compiling for
        ``dim`` keeps at most ``(dim - 1).bit_length()`` bits (positions are
        below dim), so every bucket is reachable.
    seed : int
    """

    name = "doph"

    def __init__(self, K=4, L=50, bits=None, seed=0):
        """Check ``K``, ``L``, ``bits`` and ``seed``; the random draws
        (from ``seed``) are made by ``compile(dim)`` for an input width."""
        super().__init__(K, L, seed)
        if bits is None:
            bits = max(1, min(8, 16 // self.K))
        self.bits = _int_arg(bits, "bits", minimum=1, maximum=MAX_CODE_BITS)
        self._check_code_bits(self.bits, f"bits={self.bits} per code")

    def _code_bits(self, dim=None):
        # Positions are < dim: bits beyond (dim - 1).bit_length() are always
        # 0, and buckets they would address are unreachable.
        if dim is None:
            return self.bits
        return min(self.bits, max(1, (int(dim) - 1).bit_length()))

    def compile(self, dim):
        dim = self._check_dim(dim)
        n_hashes = self.K * self.L
        _check_memory(8 * dim, "DOPH permutation", "reduce the input dimension")
        rng = self._rng()
        perm = rng.permutation(dim).astype(np.int32)
        perm.flags.writeable = False
        bin_width = -(-dim // n_hashes)
        return CompiledFamily(
            self, "doph", self.K, self.L, dim, self._code_bits(dim), bin_width=bin_width,
            max_probes=DENSIFY_PROBES,
            seed=(self.seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64,
            perm=perm)


# the hash families by the lower-case name configs, the CLI and layers use
FAMILIES = {cls.__name__.lower(): cls for cls in (SimHash, DWTA, WTA, DOPH)}


def family_class(name):
    """The family class called ``name``, in any case ("SimHash", "simhash")."""
    if str(name).lower() not in FAMILIES:
        raise ValueError(f"hash family must be one of {', '.join(FAMILIES)} (in any case), "
                         f"got {name!r}")
    return FAMILIES[str(name).lower()]


def family_from_config(config):
    """The specification described by ``spec.get_config()``; the ``family`` name may be
    written in any case ("SimHash", "simhash")."""
    config = dict(config)
    return family_class(config.pop("family", None))(**config)


# ---------------------------------------------------------------------------
# Bucket tables
# ---------------------------------------------------------------------------

def estimate_table_bytes(n_buckets, L, bucket_size):
    """Bytes of ids ``(L, n_buckets, bucket_size)`` and counts ``(L, n_buckets)``.

    Parameters
    ----------
    n_buckets : int
        Buckets per table (a compiled family's ``n_buckets``).
    L : int
        Tables.
    bucket_size : int
        Slots per bucket.

    Returns
    -------
    int
    """
    n_buckets = _int_arg(n_buckets, "n_buckets", minimum=1)
    L = _int_arg(L, "L", minimum=1)
    bucket_size = _int_arg(bucket_size, "bucket_size", minimum=1)
    return 4 * L * n_buckets * (bucket_size + 1)


def _batch_rows(batch, dim, n_threads):
    """(n_rows, dense, indptr, indices, data) of a query batch, checked: a
    dense batch fills ``dense`` and leaves the CSR arrays empty, a sparse
    batch the other way round (the query kernel reads whichever is set)."""
    if sp.issparse(batch):
        indptr, indices, data = _as_csr_rows(batch, dim, "batch")
        return (indptr.shape[0] - 1, np.empty((0, 1), dtype=np.float32), indptr, indices,
                data)
    dense = _as_dense_rows(batch, dim, "batch")
    _check_finite_dense(dense, "batch", n_threads)
    return (dense.shape[0], dense, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.float32))


class _QueryScratch:
    """Per-thread scratch one table object reuses across its queries.

    Union and sample queries mark ids in one int32 row of ``n_items`` per
    thread: a query of n rows uses the marks ``base + 1 .. base + n``, above
    every value already there, so rows need no clearing between queries.
    Threshold queries count hits in per-thread rows the kernel restores on
    return. A concurrent query (the lock is held) gets fresh scratch:
    correct, only slower.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._stamps = None
        self._mark_base = 0
        self._threshold = None

    def clear(self):
        """Forget the buffers (their width, n_items, changed)."""
        with self._lock:
            self._stamps = None
            self._threshold = None

    @contextmanager
    def lend(self, threshold_mode, n_threads, n_items, n_rows, full):
        """Yield (stamps, mark_base, threshold scratch) for one query."""
        empty = np.zeros((1, 1), dtype=np.int32)
        if not threshold_mode and n_rows >= 2**31 - 2:
            raise ValueError("batch has too many rows for one query")
        owned = self._lock.acquire(blocking=False)
        try:
            if threshold_mode:
                yield empty, 0, self._threshold_rows(owned, n_threads, n_items, full)
            else:
                stamps, mark_base = self._stamp_rows(owned, n_threads, n_items, n_rows)
                yield stamps, mark_base, empty
                if owned:
                    self._mark_base = mark_base + n_rows + 1
        finally:
            if owned:
                self._lock.release()

    def _stamp_rows(self, owned, n_threads, n_items, n_rows):
        if not owned:
            return np.zeros((n_threads, n_items), dtype=np.int32), 0
        if self._stamps is None or self._stamps.shape[0] < n_threads:
            self._stamps = np.zeros((n_threads, n_items), dtype=np.int32)
            self._mark_base = 0
        if self._mark_base + n_rows + 1 >= 2**31 - 1:
            self._stamps[...] = 0
            self._mark_base = 0
        return self._stamps, self._mark_base

    def _threshold_rows(self, owned, n_threads, n_items, full):
        width = 2 * n_items + full
        s = self._threshold if owned else None
        if s is None or s.shape[0] < n_threads or s.shape[1] != width:
            s = np.empty((n_threads, width), dtype=np.int32)
            s[:, :n_items] = 0
            s[:, n_items:2 * n_items] = -1
            if owned:
                self._threshold = s
        return s


class LSHTables:
    """L hash tables of ``n_buckets`` buckets holding up to ``bucket_size`` ids.

    Parameters
    ----------
    family : CompiledFamily
        From ``spec.compile(dim)``; its range sizes the tables.
    bucket_size : int
        Slots per bucket (>= 1).
    policy : {"fifo", "reservoir"}
        What a full bucket keeps: ``"fifo"`` the newest ``bucket_size``
        insertions (a ring buffer: slot = count % bucket_size);
        ``"reservoir"`` a uniform sample of all insertions (insertion number
        c is kept with probability bucket_size / (c + 1), drawn from a
        counter-based generator keyed by (seed, table, item id, c)).
    seed : int
        Seed of reservoir draws and of ``query(mode="sample")`` top-ups.

    Notes
    -----
    Layout: ``ids`` int32 ``(L, n_buckets, bucket_size)`` and ``counts`` int32
    ``(L, n_buckets)`` (insertions seen; valid slots
    ``min(count, bucket_size)``). Filling runs one thread per table, items in
    order, so contents do not depend on the thread count.

    A table object is not meant to be queried from several Python threads at
    once (queries reuse per-thread scratch; a concurrent query falls back to
    fresh scratch, which is correct but slower).
    """

    def __init__(self, family, bucket_size=128, policy="fifo", seed=0):
        """Check the settings; ``family`` must be compiled already
        (``spec.compile(dim)``). ``build`` fills the tables."""
        if not isinstance(family, _hash.CompiledFamily):
            hint = (" (call .compile(dim) on the specification first)"
                    if isinstance(family, _FamilySpec) else "")
            raise TypeError(
                f"family must be a CompiledFamily, got {type(family).__name__}{hint}")
        self.bucket_size = _int_arg(bucket_size, "bucket_size", minimum=1,
                                    maximum=2**30)
        if policy not in _tables.POLICIES:
            raise ValueError(f"policy must be 'fifo' or 'reservoir', got {policy!r}")
        self.policy = policy
        self.seed = _seed_arg(seed)
        self.family = family
        self.L = family.L
        self.n_buckets = family.n_buckets
        n_bytes = estimate_table_bytes(self.n_buckets, self.L, self.bucket_size)
        _check_memory(
            n_bytes,
            f"LSH tables (L={self.L} x {self.n_buckets:,} buckets x bucket_size="
            f"{self.bucket_size})",
            "use a smaller K (fewer buckets), fewer tables L or a smaller bucket_size")
        # ids stay uninitialised: only min(count, bucket_size) slots are read.
        self._ids = np.empty((self.L, self.n_buckets, self.bucket_size), dtype=np.int32)
        self._counts = np.zeros((self.L, self.n_buckets), dtype=np.int32)
        self._compiled = _tables.CompiledTables(self._ids, self._counts)
        self.n_items = 0
        self._scratch = _QueryScratch()

    # -- properties ---------------------------------------------------------

    @property
    def compiled(self):
        """The ``CompiledTables`` whose C struct points into this object's arrays."""
        return self._compiled

    @property
    def ids(self):
        """ids (L, n_buckets, bucket_size); slots beyond the count are garbage."""
        return self._ids

    @property
    def counts(self):
        """Insertions seen per bucket (L, n_buckets)."""
        return self._counts

    @property
    def nbytes(self):
        return int(self._ids.nbytes + self._counts.nbytes)

    def bucket(self, table, bucket_id):
        """Ids held by one bucket, in slot order (a copy)."""
        table = _int_arg(table, "table", minimum=0, maximum=self.L - 1)
        bucket_id = _int_arg(bucket_id, "bucket_id", minimum=0, maximum=self.n_buckets - 1)
        return _tables._bucket_contents(self._compiled, table, bucket_id)

    def __repr__(self):
        return (f"LSHTables({self.family!r}, bucket_size={self.bucket_size}, "
                f"policy={self.policy!r}, n_items={self.n_items})")

    # -- filling ------------------------------------------------------------

    def _vectors(self, vectors, name, n_threads):
        X = _as_dense_rows(vectors, self.family.dim, name)
        if X.shape[0] > 2**31 - 1:
            raise ValueError(f"{name} has more than 2^31 - 1 rows")
        _check_finite_dense(X, name, n_threads)
        return X

    def build(self, vectors, threads=None):
        """Clear the tables, hash row i of ``vectors`` and insert id i.

        Parameters
        ----------
        vectors : array_like, shape (n_items, dim)
            E.g. a layer's weight rows; float32 C-contiguous avoids a copy.
        threads : int or None
            OpenMP threads (and BLAS threads for Gaussian SimHash).
        """
        n_threads = _threads(threads)
        X = self._vectors(vectors, "vectors", n_threads)
        blas = "proj_t" in self.family.arrays
        with _blas_threads(1 if blas else None):
            _tables._build(self.family, self._compiled, X, _tables.POLICIES[self.policy],
                         self.seed, n_threads)
        self._set_n_items(X.shape[0])
        return self

    def build_from_codes(self, codes, threads=None):
        """Clear the tables and insert id i into bucket ``codes[i, l]`` of table l.

        Parameters
        ----------
        codes : array_like of int, shape (n_items, L)
            Bucket ids, e.g. from ``family.hash_dense``.
        threads : int or None
        """
        n_threads = _threads(threads)
        codes_by_table = self._codes(codes, "codes")
        _tables._build_from_codes(self._compiled, codes_by_table, _tables.POLICIES[self.policy],
                                self.seed, n_threads)
        self._set_n_items(codes_by_table.shape[1])
        return self

    def _codes(self, codes, name):
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {codes.dtype}")
        if codes.ndim != 2 or codes.shape[1] != self.L:
            raise ValueError(f"{name} must have shape (n_items, L={self.L}), got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.n_buckets):
            raise ValueError(f"{name} must lie in [0, n_buckets={self.n_buckets})")
        return np.ascontiguousarray(codes.T, dtype=np.int32)

    def _set_n_items(self, n_items):
        if n_items != self.n_items:
            self._scratch.clear()
        self.n_items = n_items

    def update(self, ids, vectors, threads=None):
        """Re-hash a subset of items and insert them again.

        Stale entries are kept: an item's old entries stay in the buckets it
        hashed to before, until they are overwritten (FIFO), sampled out
        (reservoir) or the next ``build``. An item is not inserted again into
        a bucket that already holds it. Queries de-duplicate, so a stale
        entry at worst proposes an item for one more bucket; call ``build``
        periodically (as SLIDE does) to drop them.

        Parameters
        ----------
        ids : array_like of int, shape (n,)
            Item ids in ``[0, n_items)``; inserted in this order.
        vectors : array_like, shape (n, dim)
            Their new vectors.
        threads : int or None
        """
        n_threads = _threads(threads)
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must hold integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
        X = self._vectors(vectors, "vectors", n_threads)
        if X.shape[0] != ids.shape[0]:
            raise ValueError(
                f"ids has {ids.shape[0]} entries but vectors has {X.shape[0]} rows")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_items):
            raise ValueError(
                f"ids must lie in [0, n_items={self.n_items}) (build the tables first)")
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        codes_by_table = np.empty((self.L, X.shape[0]), dtype=np.int32)
        blas = "proj_t" in self.family.arrays
        with _blas_threads(1 if blas else None):
            _hash._hash_dense_tables_layout(self.family, X, codes_by_table, n_threads)
        _tables._fill_codes(self._compiled, codes_by_table, ids,
                          _tables.POLICIES[self.policy], self.seed, True, n_threads)
        return self

    # -- querying -----------------------------------------------------------

    def query(self, batch, mode="union", cap=None, threshold=2, n=None,
              threads=None, seed=0):
        """Candidate ids for each row of ``batch``.

        Parameters
        ----------
        batch : array_like (n_rows, dim) or scipy.sparse matrix
            Query vectors (hashed with the tables' family).
        mode : {"union", "threshold", "sample"}
            ``"union"``: the ids of the L hit buckets (SLIDE), at most ``cap``
            (first ones in table order). ``"threshold"``: ids found in at
            least ``threshold`` of the L hit buckets, at most ``cap``.
            ``"sample"``: exactly ``n`` distinct ids: the hit buckets probed
            in a random order until n ids are collected, then topped up with
            uniformly random ids.
        cap : int or None
            Most ids per row for union / threshold (None: L * bucket_size).
        threshold : int
            Tables an id must be found in (threshold mode), 1 to L.
        n : int
            Ids per row (sample mode), 1 to n_items.
        threads : int or None
        seed : int
            Seed of the sample mode's table order and top-up.

        Returns
        -------
        indptr : ndarray of int64, shape (n_rows + 1,)
        ids : ndarray of int32
            Row r's ids are ``ids[indptr[r]:indptr[r + 1]]``, distinct.
        """
        if mode not in _tables.QUERY_MODES:
            raise ValueError(f"mode must be 'union', 'threshold' or 'sample', got {mode!r}")
        n_threads = _threads(threads)
        seed = _seed_arg(seed)
        full = self.L * self.bucket_size
        capacity = min(full, 2**31 - 1)
        if mode == "sample":
            if n is None:
                raise ValueError("n (ids per row) is required when mode='sample'")
            n = _int_arg(n, "n", minimum=1)
            if n > self.n_items:
                raise ValueError(
                    f"n = {n} exceeds the {self.n_items} items in the tables "
                    f"(build the tables first, or ask for fewer ids)")
            capacity = n
        elif cap is not None:
            cap = _int_arg(cap, "cap", minimum=1)
            capacity = min(capacity, cap)
        if mode == "threshold":
            threshold = _int_arg(threshold, "threshold", minimum=1, maximum=self.L)
        else:
            threshold = 1
        n_rows, dense, indptr, indices, data = _batch_rows(batch, self.family.dim, n_threads)
        if n_rows == 0 or self.n_items == 0:
            return (np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        # Rows are hashed inside the query's own parallel region by the row
        # kernels the engine uses (same codes); one region per query, since
        # on a loaded machine every region pays for waking its threads.
        codes = np.zeros((0, 1), dtype=np.int32)
        with self._scratch.lend(mode == "threshold", n_threads, self.n_items, n_rows,
                                full) as (stamps, mark_base, scratch):
            n_out, out = _tables._query(self.family, self._compiled, _tables.QUERY_MODES[mode],
                                        codes, dense, indptr, indices, data, capacity,
                                        threshold, self.n_items, stamps, mark_base, scratch,
                                        seed, n_threads)
        if n_out.size and (n_out == out.shape[1]).all():
            # every row filled its slice (e.g. sample mode): already CSR
            indptr = np.arange(n_out.size + 1, dtype=np.int64) * out.shape[1]
            return indptr, out.reshape(-1)
        return _tables._compact(n_out, out, n_threads if out.size > _SERIAL_BELOW else 1)


