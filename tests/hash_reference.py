"""Plain NumPy / Python twins of the LSH kernels in pyslide/_hash.pyx.

Slow and obvious on purpose: each function follows the definitions in
pyslide/hashing.py, not the kernels' loops.
"""
import numpy as np

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def mix_seed(seed, a, b):
    s = (seed ^ ((a * 0xD1B54A32D192ED03) & M64)) & M64
    s = (s + GOLDEN) & M64
    s ^= (b * 0xABC98388FB8FAC03) & M64
    s = (s + GOLDEN) & M64
    return _mix(s)


def rand_below(state, n):
    """(new state, uniform int in [0, n)) as _common.rand_below draws it."""
    state = (state + GOLDEN) & M64
    return state, ((_mix(state) >> 32) * n) >> 32


def pack(codes, K, code_bits):
    """codes (n, L*K) -> bucket ids (n, L): code k at bits k*code_bits."""
    n, n_hashes = codes.shape
    codes = codes.reshape(n, n_hashes // K, K).astype(np.int64)
    shifts = np.arange(K) * code_bits
    return (codes << shifts).sum(axis=2).astype(np.int32)


def donor_table(n_hashes, seed, max_probes):
    """Bin looked at by densification attempt t of bin c: (n_hashes, probes)."""
    table = np.empty((n_hashes, max_probes), dtype=np.int64)
    for c in range(n_hashes):
        for t in range(max_probes):
            _, table[c, t] = rand_below(mix_seed(seed, c, t), n_hashes)
    return table


def densify(codes, donors):
    """codes (n, n_hashes) with -1 for empty bins -> every bin filled."""
    out = codes.copy()
    n_hashes = codes.shape[1]
    for r in range(codes.shape[0]):
        own = codes[r]
        for c in range(n_hashes):
            if own[c] >= 0:
                continue
            for donor in donors[c]:
                if own[donor] >= 0:
                    out[r, c] = own[donor]
                    break
            else:
                # nearest originally non-empty bin to the right, circularly
                nonempty = [(c + s) % n_hashes for s in range(1, n_hashes)
                            if own[(c + s) % n_hashes] >= 0]
                out[r, c] = own[nonempty[0]] if nonempty else 0
    return out


def simhash_projections(X, fam):
    """X @ P^T in float64 (n, L*K) for Gaussian or sparse SimHash."""
    X = np.asarray(X, dtype=np.float64)
    arrays = fam.arrays
    if fam.kind == "simhash":
        P = arrays["proj_t"].T.astype(np.float64)
    else:
        P = np.zeros((fam.K * fam.L, fam.dim))
        rows = np.repeat(np.arange(P.shape[0]), arrays["proj_dims"].shape[1])
        P[rows, arrays["proj_dims"].ravel()] = arrays["proj_signs"].ravel()
    return X @ P.T, P


def simhash(X, fam):
    proj, _ = simhash_projections(X, fam)
    return pack((proj > 0).astype(np.int64), fam.K, 1)


def simhash_ambiguous(X, fam, rel=1e-4):
    """(n, L) mask of tables with a projection too close to 0 to call its sign
    in float32 (rounding of different summation orders)."""
    proj, P = simhash_projections(X, fam)
    scale = np.abs(np.asarray(X, np.float64)) @ np.abs(P).T
    # an exact 0 (no terms, or exact integer sums) is 0 in every path
    close = (np.abs(proj) <= rel * scale) & (proj != 0)
    return close.reshape(close.shape[0], fam.L, fam.K).any(axis=2)


def wta(X, fam):
    X = np.asarray(X, dtype=np.float32)
    values = X[:, fam.arrays["bin_dims"]]              # (n, n_hashes, bin)
    codes = np.argmax(values, axis=2)                  # first maximum
    return pack(codes, fam.K, fam.code_bits)


def dwta(X, fam):
    X = np.asarray(X, dtype=np.float32)
    values = X[:, fam.arrays["bin_dims"]]
    empty = (values == 0).all(axis=2)
    codes = np.argmax(np.where(values != 0, values, -np.inf), axis=2).astype(np.int64)
    codes[empty] = -1
    donors = donor_table(fam.K * fam.L, fam.densify_seed, fam.max_probes)
    return pack(densify(codes, donors), fam.K, fam.code_bits)


def doph(X, fam):
    X = np.asarray(X)
    n_hashes = fam.K * fam.L
    perm = fam.arrays["perm"]
    width = fam.bin_width
    codes = np.full((X.shape[0], n_hashes), -1, dtype=np.int64)
    for r in range(X.shape[0]):
        positions = np.sort(perm[np.flatnonzero(X[r])])
        for p in positions:                            # increasing: first is min
            b = p // width
            if b < n_hashes and codes[r, b] < 0:
                codes[r, b] = p & ((1 << fam.code_bits) - 1)
    donors = donor_table(n_hashes, fam.densify_seed, fam.max_probes)
    return pack(densify(codes, donors), fam.K, fam.code_bits)


def hash_reference(X, fam):
    return {"simhash": simhash, "sparse_simhash": simhash, "wta": wta,
            "dwta": dwta, "doph": doph}[fam.kind](X, fam)


def fill_tables(codes, n_buckets, bucket_size, policy, seed, ids=None, tables=None,
                skip_present=False):
    """Insert item ids[i] (default i) into bucket codes[i, l] of every table l
    (with skip_present, not into a bucket already holding it).

    Returns a list over tables of dicts bucket -> (list of slots, count).
    """
    n, L = codes.shape
    ids = np.arange(n) if ids is None else ids
    if tables is None:
        tables = [dict() for _ in range(L)]
    for l in range(L):
        for i in range(n):
            b = int(codes[i, l])
            slots, count = tables[l].get(b, ([], 0))
            item = int(ids[i])
            if skip_present and item in slots:
                continue
            if count < bucket_size:
                slots.append(item)
            elif policy == "fifo":
                slots[count % bucket_size] = item
            else:
                state = (mix_seed(seed, l, 0x7E5E)
                         ^ ((item * 0xD6E8FEB86659FD93) & M64)
                         ^ ((count * 0xA0761D6478BD642F) & M64))
                _, slot = rand_below(state, count + 1)
                if slot < bucket_size:
                    slots[slot] = item
            tables[l][b] = (slots, count + 1)
    return tables


def union(tables_ref, codes_row):
    """Ids of the hit buckets, de-duplicated, in table then slot order."""
    seen, out = set(), []
    for l, b in enumerate(codes_row):
        for item in tables_ref[l].get(int(b), ([], 0))[0]:
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


def threshold(tables_ref, codes_row, t):
    hits = {}
    for l, b in enumerate(codes_row):
        for item in set(tables_ref[l].get(int(b), ([], 0))[0]):
            hits[item] = hits.get(item, 0) + 1
    return {item for item, h in hits.items() if h >= t}
