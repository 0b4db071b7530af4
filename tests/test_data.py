"""XC / libsvm reading and writing, split files, label and feature conversion."""
import io

import numpy as np
import pytest
import scipy.sparse as sp

from pyslide import _io
from pyslide.data import (check_features, labels_to_csr, load_libsvm, load_xc, load_xc_split,
                          make_xc, read_split, save_libsvm, save_xc)


# ---------------------------------------------------------------------------
# A plain Python reader: the reference the Cython parser is checked against
# ---------------------------------------------------------------------------

def naive_read(text, header=True, one_based=False):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    counts = None
    if header:
        counts = [int(t) for t in lines[0].split()]
        lines = lines[1:]
    x_rows, x_cols, x_vals, y_rows, y_cols = [], [], [], [], []
    for row, line in enumerate(lines):
        tokens = line.replace("\r", " ").split(" ")
        first = tokens[0]
        if first and ":" not in first:
            for label in first.split(","):
                y_rows.append(row)
                y_cols.append(int(label))
            tokens = tokens[1:]
        for token in tokens:
            if not token:
                continue
            feature, value = token.split(":")
            x_rows.append(row)
            x_cols.append(int(feature) - one_based)
            x_vals.append(np.float32(float(value)))
    n = len(lines)
    d = counts[1] if counts else max(x_cols, default=-1) + 1
    n_labels = counts[2] if counts else max(y_cols, default=-1) + 1
    X = sp.csr_matrix((np.array(x_vals, dtype=np.float32), (x_rows, x_cols)), shape=(n, d))
    Y = sp.csr_matrix((np.ones(len(y_cols), dtype=np.float32), (y_rows, y_cols)),
                      shape=(n, n_labels))
    Y.data[:] = 1
    return X, Y


def assert_csr_equal(A, B):
    assert A.shape == B.shape
    A, B = A.tocsr(), B.tocsr()
    A.sort_indices()
    B.sort_indices()
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


def assert_canonical(M):
    assert sp.isspmatrix_csr(M)
    assert M.dtype == np.float32
    assert M.indices.dtype == np.int32
    assert M.has_canonical_format


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def random_number_tokens(rng, n):
    tokens = []
    magnitudes = 10.0 ** rng.uniform(-30, 30, size=n)
    signs = rng.choice([-1.0, 1.0], size=n)
    for i in range(n):
        v = signs[i] * magnitudes[i]
        form = i % 8
        if form == 0:
            tokens.append("%.6f" % (v / 10 ** int(np.log10(abs(v)))))   # XC style
        elif form == 1:
            tokens.append("%.9g" % v)
        elif form == 2:
            tokens.append("%e" % v)
        elif form == 3:
            tokens.append("%.3E" % v)
        elif form == 4:
            tokens.append(repr(float(np.float32(v))))
        elif form == 5:
            tokens.append("%d" % rng.integers(0, 10**12))
        elif form == 6:   # more than 19 significant digits: the strtod path
            tokens.append("%.25f" % rng.uniform(0, 100))
        else:
            tokens.append("%.17g" % rng.uniform(-1, 1))
    return tokens


def test_float_parser_matches_python_float_on_random_tokens():
    rng = np.random.default_rng(0)
    tokens = random_number_tokens(rng, 20_000)
    tokens += ["1e-05", "-0.5", "3.", ".25", "+7", "0", "-0", "00012.50", "1E+3", "2.5e0",
               "0.000000", "123456789012345678901234567890", "1e-45", "1e-50", "3.4028234e38",
               "0.1", "0.30000001", "16777217", "9007199254740993", "5e-324"]
    with np.errstate(over="ignore"):
        for token in tokens:
            expected = np.float32(float(token))
            got = _io.parse_float_token(token.encode())
            assert got is not None, token
            assert got.tobytes() == expected.tobytes(), (token, got, expected)


@pytest.mark.parametrize("token", ["", ".", "-", "+", "e5", "1e", "1e+", "1.2.3", "1..2", "--1",
                                   "0x10", "nan", "inf", "1,5", "1 "])
def test_float_parser_rejects_malformed_tokens(token):
    assert _io.parse_float_token(token.encode()) is None


def test_float_writer_round_trips_every_magnitude():
    rng = np.random.default_rng(1)
    values = (rng.standard_normal(20_000) * 10.0 ** rng.uniform(-12, 20, 20_000)).astype(np.float32)
    values = np.concatenate([values, np.float32([0, 1, -1, 0.1, 1e-5, 1e-7, 3.4e38, 1e-45,
                                                 1.17549435e-38, 123456.7, 1e15, 1e14])])
    for v in values:
        text = _io.format_float(v)
        assert len(text) <= _io.MAX_FEATURE_CHARS - 12
        assert _io.parse_float_token(text).tobytes() == v.tobytes(), (v, text)
        assert np.float32(float(text)).tobytes() == v.tobytes(), (v, text)


def test_float_writer_is_short_for_typical_values():
    assert _io.format_float(np.float32(0.5)) == b"0.5"
    assert _io.format_float(np.float32(21.96159)) == b"21.96159"
    assert _io.format_float(np.float32(1.0)) == b"1"
    assert _io.format_float(np.float32(-0.0123456)) == b"-0.0123456"
    assert _io.format_float(np.float32(2500000)) == b"2500000"


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, n, avg_nnz, avg_labels", [
    ("train.txt", 4880, 68.49, 2.380),
    ("test.txt", 2515, 68.98, 2.444),
])
def test_bibtex_statistics(data_file, name, n, avg_nnz, avg_labels):
    X, Y = load_xc(data_file("bibtex", name))
    assert X.shape == (n, 1836) and Y.shape == (n, 159)
    assert_canonical(X)
    assert_canonical(Y)
    assert round(X.nnz / n, 2) == avg_nnz
    assert round(Y.nnz / n, 3) == avg_labels
    assert np.all(np.diff(Y.indptr) >= 1)
    np.testing.assert_array_equal(X.data, 1.0)


def test_bibtex_matches_the_naive_reader(data_file):
    path = data_file("bibtex", "test.txt")
    X, Y = load_xc(path)
    X_ref, Y_ref = naive_read(path.read_text())
    assert_csr_equal(X, X_ref)
    assert_csr_equal(Y, Y_ref)


def test_amazon_partial_fixture_loads_with_strict_rows_off(data_file):
    path = data_file("amazon670k_partial_test", "amazon_partial_test.txt")
    X, Y = load_xc(path, strict_rows=False)
    assert X.shape == (512, 135_909) and Y.shape == (512, 670_091)
    assert X.indices.max() == 135_776 and Y.indices.max() == 670_089
    assert round(X.nnz / 512, 2) == 64.07
    assert round(Y.nnz / 512, 2) == 5.06
    X_ref, Y_ref = naive_read(path.read_bytes().decode())
    assert_csr_equal(X, X_ref)
    assert_csr_equal(Y, Y_ref)


# ---------------------------------------------------------------------------
# Format details
# ---------------------------------------------------------------------------

def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_empty_label_and_feature_lists_are_kept(tmp_path):
    text = "5 4 3\n0,2 1:0.5 3:2\n 0:1\n2:1.5\n1\n\n"
    X, Y = load_xc(write(tmp_path, text))
    assert X.shape == (5, 4) and Y.shape == (5, 3)
    np.testing.assert_array_equal(np.diff(X.indptr), [2, 1, 1, 0, 0])
    np.testing.assert_array_equal(np.diff(Y.indptr), [2, 0, 0, 1, 0])
    np.testing.assert_array_equal(X.toarray()[0], [0, 0.5, 0, 2])
    np.testing.assert_array_equal(X.toarray()[2], [0, 0, 1.5, 0])
    np.testing.assert_array_equal(Y.toarray()[3], [0, 1, 0])


def test_no_header_infers_the_shape_and_arguments_override_it(tmp_path):
    path = write(tmp_path, "1,4 2:1 7:3\n0 5:1")          # no final newline
    X, Y = load_xc(path)
    assert X.shape == (2, 8) and Y.shape == (2, 5)
    X, Y = load_xc(path, n_features=100, n_labels=10)
    assert X.shape == (2, 100) and Y.shape == (2, 10)
    X, Y = load_xc(write(tmp_path, "3 10 10\n1 2:1\n\n3:1\n", "h.txt"), n_features=20)
    assert X.shape == (3, 20) and Y.shape == (3, 10)


def test_header_false_reads_the_first_line_as_data(tmp_path):
    X, Y = load_xc(write(tmp_path, "1,2 0:1\n 1:2\n"), header=False)
    assert X.shape == (2, 2) and Y.shape == (2, 3)


def test_crlf_and_tabs_and_extra_spaces(tmp_path):
    X, Y = load_xc(write(tmp_path, "2 3 2\r\n1 0:1\t2:2  \r\n  1:3\r\n"))
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 2], [0, 3, 0]])
    np.testing.assert_array_equal(Y.toarray(), [[0, 1], [0, 0]])


def test_unsorted_and_repeated_ids_are_sorted_summed_and_merged(tmp_path):
    X, Y = load_xc(write(tmp_path, "2 5 4\n3,1,3 4:1 0:2 4:0.5\n2 1:1 1:1\n"))
    assert_canonical(X)
    assert_canonical(Y)
    np.testing.assert_array_equal(X.toarray(), [[2, 0, 0, 0, 1.5], [0, 2, 0, 0, 0]])
    np.testing.assert_array_equal(Y.toarray(), [[0, 1, 0, 1], [0, 0, 1, 0]])


def test_file_objects_are_accepted(tmp_path):
    X, Y = load_xc(io.BytesIO(b"2 3 2\n1 0:1\n0 2:5\n"))
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 0], [0, 0, 5]])


@pytest.mark.parametrize("header", [True, False])
def test_save_load_round_trip_is_exact(tmp_path, header):
    X, Y = make_xc("small", n_samples=300, seed=5)
    X = X.tolil()
    X[3, :] = 0          # a row without features
    X = X.tocsr()
    X.eliminate_zeros()
    Y = Y.tolil()
    Y[4, :] = 0          # a row without labels
    Y[3, :] = 0          # and one with neither
    Y = Y.tocsr()
    Y.eliminate_zeros()
    path = tmp_path / "round.txt"
    save_xc(path, X, Y, header=header)
    kwargs = {} if header else dict(n_features=X.shape[1], n_labels=Y.shape[1])
    X2, Y2 = load_xc(path, **kwargs)
    assert_canonical(X2)
    assert_csr_equal(X2, X.astype(np.float32))
    assert_csr_equal(Y2, Y)
    if header:
        assert path.read_text().split("\n")[0] == f"300 {X.shape[1]} {Y.shape[1]}"


def test_save_accepts_dense_inputs_and_label_lists(tmp_path):
    X = np.array([[0.0, 1.25, 0.0], [3.0, 0.0, -1e-3]])
    path = tmp_path / "dense.txt"
    save_xc(path, X, [[2], []])
    assert path.read_text() == "2 3 3\n2 1:1.25\n 0:3 2:-0.001\n"
    X2, Y2 = load_xc(path)
    np.testing.assert_array_equal(X2.toarray(), X.astype(np.float32))
    np.testing.assert_array_equal(Y2.toarray(), [[0, 0, 1], [0, 0, 0]])


@pytest.mark.parametrize("zero_based", [False, True])
def test_libsvm_round_trip(tmp_path, zero_based):
    X, Y = make_xc("small", n_samples=200, seed=6)
    path = tmp_path / "data.svm"
    save_libsvm(path, X, Y, zero_based=zero_based)
    ids = [int(t.split(":")[0]) for line in path.read_text().split("\n")
           for t in line.split(" ")[1:] if t]
    assert min(ids) == (0 if zero_based else 1) + X.indices.min()
    X2, Y2 = load_libsvm(path, n_features=X.shape[1], n_labels=Y.shape[1],
                         zero_based=zero_based)
    assert_csr_equal(X2, X)
    assert_csr_equal(Y2, Y)
    if not zero_based:
        X3, _ = load_libsvm(path, n_features=X.shape[1], n_labels=Y.shape[1])
        assert_csr_equal(X3, X)


def test_libsvm_auto_detects_the_id_base(tmp_path):
    one = write(tmp_path, "1 1:0.5 3:1\n0,2 2:1\n", "one.svm")
    X, Y = load_libsvm(one)
    np.testing.assert_array_equal(X.toarray(), [[0.5, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(Y.toarray(), [[0, 1, 0], [1, 0, 1]])
    zero = write(tmp_path, "1 0:0.5 3:1\n", "zero.svm")
    X, _ = load_libsvm(zero)
    np.testing.assert_array_equal(X.toarray(), [[0.5, 0, 0, 1]])
    X, _ = load_libsvm(one, zero_based=True)
    assert X.shape == (2, 4)
    X, _ = load_libsvm(one, n_features=3)       # one-based: id 3 is the last column
    assert X.shape == (2, 3)


def test_parser_agrees_with_the_naive_reader_on_synthetic_files(tmp_path):
    X, Y = make_xc("small", n_samples=500, seed=9)
    path = tmp_path / "s.txt"
    save_xc(path, X, Y)
    X_ref, Y_ref = naive_read(path.read_text())
    X2, Y2 = load_xc(path)
    assert_csr_equal(X2, X_ref)
    assert_csr_equal(Y2, Y_ref)
    save_libsvm(path, X, Y)
    X_ref, Y_ref = naive_read(path.read_text(), header=False, one_based=True)
    X2, Y2 = load_libsvm(path)
    assert_csr_equal(X2, X_ref)
    assert_csr_equal(Y2, Y_ref)


# ---------------------------------------------------------------------------
# Split files
# ---------------------------------------------------------------------------

def test_read_split_returns_zero_based_rows(tmp_path):
    path = write(tmp_path, "1 3\n4 1\n2 2\n", "tr.txt")
    np.testing.assert_array_equal(read_split(path), [0, 3, 1])
    np.testing.assert_array_equal(read_split(path, column=1), [2, 0, 1])


def test_load_xc_split(tmp_path):
    data = write(tmp_path, "4 3 2\n0 0:1\n1 1:1\n0 2:1\n1 0:2\n", "all.txt")
    train = write(tmp_path, "1\n3\n", "tr.txt")
    test = write(tmp_path, "4\n2\n", "tst.txt")
    X, Y, Xt, Yt = load_xc_split(data, train, test)
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(Xt.toarray(), [[2, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(Yt.toarray(), [[0, 1], [0, 1]])
    X, Y, Xt, Yt = load_xc_split(data, train)          # test = the other rows
    np.testing.assert_array_equal(Xt.toarray(), [[0, 1, 0], [2, 0, 0]])


# ---------------------------------------------------------------------------
# labels_to_csr and check_features
# ---------------------------------------------------------------------------

def test_labels_to_csr_accepts_every_form():
    expected = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32)
    forms = [
        [[3, 1, 3], [], [0]],
        [np.array([1, 3]), np.array([], dtype=int), (0,)],
        sp.csr_matrix(expected),
        sp.csc_matrix(expected),
        sp.coo_matrix(expected.astype(np.int64)),
        expected,
        expected.astype(bool),
    ]
    for labels in forms:
        Y = labels_to_csr(labels)
        assert_canonical(Y)
        np.testing.assert_array_equal(Y.toarray(), expected)
    Y = labels_to_csr([[1], [], [0]], n_labels=6)
    assert Y.shape == (3, 6)
    Y = labels_to_csr(sp.csr_matrix(expected), n_labels=6)
    assert Y.shape == (3, 6)


def test_labels_to_csr_returns_canonical_input_unchanged():
    _, Y = make_xc("small", n_samples=50)
    assert labels_to_csr(Y) is Y
    assert labels_to_csr(Y, n_labels=Y.shape[1]) is Y


def test_labels_to_csr_multiclass():
    for labels in (np.array([2, 0, 2]), [2, 0, 2], np.array([2, 0, 2], dtype=np.int8)):
        Y = labels_to_csr(labels)
        assert_canonical(Y)
        np.testing.assert_array_equal(Y.toarray(), [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    assert labels_to_csr(np.array([1]), n_labels=4).shape == (1, 4)


def test_labels_to_csr_drops_stored_zeros():
    M = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 2]), np.array([0, 2])), shape=(1, 3))
    Y = labels_to_csr(M)
    assert Y.nnz == 1


def test_check_features_converts_every_format():
    dense = np.array([[0, 1.5, 0], [2, 0, -3]], dtype=np.float64)
    for X in (dense, dense.tolist(), sp.csr_matrix(dense), sp.csc_matrix(dense),
              sp.coo_matrix(dense), sp.bsr_matrix(dense)):
        M = check_features(X)
        assert_canonical(M)
        np.testing.assert_array_equal(M.toarray(), dense)
    integers = np.array([[0, 3], [1, 0]], dtype=np.int64)
    for X in (integers, sp.csr_matrix(integers), integers.astype(bool)):
        M = check_features(X)
        assert_canonical(M)
        np.testing.assert_array_equal(M.toarray(), integers.astype(X.dtype))


def test_check_features_sums_duplicates_sorts_and_widens():
    coo = sp.coo_matrix((np.array([1.0, 2.0, 4.0]), (np.array([0, 0, 0]), np.array([2, 0, 2]))),
                        shape=(1, 3))
    M = check_features(coo, n_features=5)
    assert M.shape == (1, 5)
    np.testing.assert_array_equal(M.indices, [0, 2])
    np.testing.assert_array_equal(M.data, [2.0, 5.0])


def test_check_features_returns_canonical_input_unchanged():
    X, _ = make_xc("small", n_samples=50)
    assert check_features(X) is X
    assert check_features(X, n_features=X.shape[1]) is X


# --------------------------------------------------------------------------- header reader

def test_read_xc_header_returns_the_declared_counts_or_none(tmp_path):
    from pyslide.data import read_xc_header
    with_header = tmp_path / "h.txt"
    with_header.write_text("2 10 5\n1 3:0.5\n2 1:1\n")
    without = tmp_path / "n.txt"
    without.write_text("1 3:0.5\n2 1:1\n")
    assert read_xc_header(str(with_header)) == (2, 10, 5)
    assert read_xc_header(str(without)) is None


def test_read_xc_header_names_the_line_of_a_bad_header(tmp_path):
    from pyslide.data import XCFormatError, read_xc_header
    bad = tmp_path / "bad.txt"
    bad.write_text("2 10\n1 3:0.5\n")
    with pytest.raises(XCFormatError, match=r"bad.txt, line 1: the header must be 'N D L'"):
        read_xc_header(str(bad))


def test_header_mismatch_says_what_the_header_declares(tmp_path):
    from pyslide.data import header_mismatch
    path = tmp_path / "h.txt"
    path.write_text("2 10 5\n1 3:0.5\n2 1:1\n")
    assert header_mismatch(str(path), 10, 5) is None
    assert header_mismatch(str(path), 10) is None          # labels not compared
    assert header_mismatch(str(path), 12, 5) == (
        f"{path}: its header (line 1) declares 10 features and 5 labels, the model has "
        f"12 features and 5 labels; is this the model's data? (ids are read against the "
        f"model's widths)")
    assert "declares 10 features, the model has 12 features;" in header_mismatch(str(path), 12)
    no_header = tmp_path / "n.txt"
    no_header.write_text("1 3:0.5\n")
    assert header_mismatch(str(no_header), 12, 5) is None


def test_why_no_features_names_the_header_or_the_missing_tokens(tmp_path):
    from pyslide.data import why_no_features
    zero = tmp_path / "z.txt"
    zero.write_text("2 0 5\n1\n2\n")
    assert why_no_features(str(zero)) == (
        "line 1: the header '2 0 5' says D=0 features (the header is 'N D L')")
    assert why_no_features(str(zero), "libsvm") == "no line has a feature ('id:value')"
    bare = tmp_path / "b.txt"
    bare.write_text("1\n2\n")
    assert why_no_features(str(bare)) == "no line has a feature ('id:value')"


def test_write_topk_writes_label_score_pairs_and_skips_empty_slots():
    import io
    from pyslide.datafiles import write_topk
    out = io.StringIO()
    write_topk(out, np.array([[3, 1], [2, -1]]), np.array([[0.5, 0.25], [1.0, 0.0]]))
    assert out.getvalue() == "3:0.5 1:0.25\n2:1\n"


def test_read_labelled_reads_either_format_and_warns_of_other_widths(tmp_path):
    from pyslide.data import read_labelled
    xc = tmp_path / "x.txt"
    xc.write_text("2 10 5\n1 3:0.5\n2 1:1\n")
    X, Y = read_labelled(xc)
    assert X.shape == (2, 10) and Y.shape == (2, 5)
    X, Y = read_labelled(xc, n_features=12, n_labels=6)           # widened, no warning
    assert X.shape == (2, 12) and Y.shape == (2, 6)
    with pytest.warns(UserWarning, match=r"declares 10 features and 5 labels, the model has "
                                         r"12 features and 6 labels"):
        read_labelled(xc, n_features=12, n_labels=6, warn_widths=True)
    libsvm = tmp_path / "l.txt"
    libsvm.write_text("1,2 1:0.5 4:1\n0 2:1\n")
    X, Y = read_labelled(libsvm, "libsvm", warn_widths=True)
    assert X.shape[0] == 2 and Y[0].indices.tolist() == [1, 2]


def test_read_labelled_refuses_missing_folders_and_featureless_files(tmp_path):
    from pyslide.data import RowCountError, XCFormatError, read_labelled
    with pytest.raises(FileNotFoundError, match=r"^test file '.*nope.txt' does not exist$"):
        read_labelled(tmp_path / "nope.txt", what="test")
    with pytest.raises(IsADirectoryError, match=r"^input file '.*' is a directory$"):
        read_labelled(tmp_path, what="input")
    bare = tmp_path / "b.txt"
    bare.write_text("1\n2\n")
    with pytest.raises(XCFormatError, match=r"b.txt: no line has a feature \('id:value'\); "
                                            r"a network needs at least one input feature"):
        read_labelled(bare, what="training")
    with pytest.raises(ValueError, match=r"file_format must be 'xc' or 'libsvm', got 'csv'"):
        read_labelled(bare, "csv")
    with pytest.raises(ValueError, match=r"^strict_rows must be True or False, got 'no'$"):
        read_labelled(bare, strict_rows="no")      # not read as True
    short = tmp_path / "s.txt"
    short.write_text("3 4 2\n1 3:0.5\n")
    with pytest.raises(RowCountError, match="pass strict_rows=False"):
        read_labelled(short)
    assert read_labelled(short, strict_rows=False)[0].shape == (1, 4)


def test_read_labelled_files_widens_every_file_to_the_widest(tmp_path):
    from pyslide.data import read_labelled_files
    (tmp_path / "a.txt").write_text("2 10 5\n1 3:0.5\n2 1:1\n")
    (tmp_path / "b.txt").write_text("1 12 3\n0 11:1\n")
    read = read_labelled_files({"training": tmp_path / "a.txt", "test": tmp_path / "b.txt"})
    assert list(read) == ["training", "test"]
    assert {X.shape[1] for X, _ in read.values()} == {12}
    assert {Y.shape[1] for _, Y in read.values()} == {5}
    assert read["test"][0][0, 11] == 1
    with pytest.raises(FileNotFoundError, match="^validation file"):
        read_labelled_files({"training": tmp_path / "a.txt", "validation": tmp_path / "c"})
