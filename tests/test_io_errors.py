"""Every bad-input path of the data layer, and the text of its message."""
import re

import numpy as np
import pytest
import scipy.sparse as sp

from pyslide.data import (XCFormatError, check_features, labels_to_csr, load_libsvm, load_xc,
                          load_xc_split, read_split, save_libsvm, save_xc)


def write(tmp_path, text, name="bad.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def expect(path, line, message, **kwargs):
    pattern = re.escape(f"{path}, line {line}: ") + message
    with pytest.raises(XCFormatError, match=pattern):
        load_xc(path, **kwargs)


HEADER = "3 10 5\n"

# (data lines after the header, line number of the error, message pattern)
BAD_LINES = [
    ("0 1:1\n1 2:0.5 3\n2 1:1\n", 3, r"feature token without ':' \(expected 'id:value'\): '3'"),
    ("0 1:1\n1 2:0.5 3:\n2 1:1\n", 3, r"malformed feature value \(expected a decimal number\): '3:'"),
    ("0 1:1\n1 2:x\n2 1:1\n", 3, r"malformed feature value .*: '2:x'"),
    ("0 1:1\n1 2:1.5.2\n2 1:1\n", 3, r"malformed feature value .*: '2:1.5.2'"),
    ("0 1:1\n1 2:1e\n2 1:1\n", 3, r"malformed feature value .*: '2:1e'"),
    ("0 1:1\n1 2:1,5\n2 1:1\n", 3, r"malformed feature value .*: '2:1,5'"),
    ("0 1:1\n1 a:1\n2 1:1\n", 3, r"malformed feature token \(expected 'id:value'\): 'a:1'"),
    ("0 1:1\n1 2x:1\n2 1:1\n", 3, r"malformed feature token .*: '2x:1'"),
    ("0 1:1\n1 -2:1\n2 1:1\n", 3, r"negative feature id \(ids must be >= 0\): '-2:1'"),
    ("0 1:1\n1 2:nan\n2 1:1\n", 3, r"non-finite feature value \(nan, inf or beyond float32 "
                                   r"range\): '2:nan'"),
    ("0 1:1\n1 2:-inf\n2 1:1\n", 3, r"non-finite feature value .*: '2:-inf'"),
    ("0 1:1\n1 2:Infinity\n2 1:1\n", 3, r"non-finite feature value .*: '2:Infinity'"),
    ("0 1:1\n1 2:1e39\n2 1:1\n", 3, r"non-finite feature value .*: '2:1e39'"),
    ("0 1:1\n1 10:1\n2 1:1\n", 3, r"feature id 10 out of range: n_features=10 "
                                  r"\(from the header\): '10:1'"),
    ("0 1:1\n5 2:1\n2 1:1\n", 3, r"label id 5 out of range: n_labels=5 \(from the header\): '5'"),
    ("0 1:1\n1,-2 2:1\n2 1:1\n", 3, r"negative label id \(ids must be >= 0\): '-2'"),
    ("0 1:1\n-1 2:1\n2 1:1\n", 3, r"negative label id .*: '-1'"),
    ("0 1:1\n1,,2 2:1\n2 1:1\n", 3, r"malformed label list \(expected 'l1,l2,...' of "
                                    r"non-negative integers\): '1,,2'"),
    ("0 1:1\n1;2 2:1\n2 1:1\n", 3, r"malformed label list .*: '1;2'"),
    ("0 1:1\nx 2:1\n2 1:1\n", 3, r"malformed label list .*: 'x'"),
    ("0 1:1\n1, 2:1\n2 1:1\n", 3, r"malformed label list .*: '1,'"),
    ("0 1:1\n1 2:1\n2 99999999999:1\n", 4, r"id too large \(ids must be < 2\*\*31\): "
                                          r"'99999999999:1'"),
    ("0 1:1\n1 2:1\n2 1:1 4:", 4, r"malformed feature value .*: '4:'"),   # truncated end
    ("0 1:1\n1 2:1\n2 1:1 4", 4, r"feature token without ':'.*: '4'"),
    ("0 1:1\n1 2:1\n2 1:1 4:1e-", 4, r"malformed feature value .*: '4:1e-'"),
]


@pytest.mark.parametrize("lines, line, message", BAD_LINES)
def test_malformed_lines_name_the_file_and_line(tmp_path, lines, line, message):
    expect(write(tmp_path, HEADER + lines), line, message)


@pytest.mark.parametrize("lines, line, message", BAD_LINES[:6])
def test_line_numbers_without_a_header(tmp_path, lines, line, message):
    expect(write(tmp_path, lines), line - 1, message)


def test_ids_out_of_the_given_range(tmp_path):
    path = write(tmp_path, "0 1:1\n1 7:1\n")
    expect(path, 2, r"feature id 7 out of range: n_features=5 \(given\): '7:1'", n_features=5)
    expect(path, 2, r"label id 1 out of range: n_labels=1 \(given\): '1'", n_labels=1)


def test_header_row_count_mismatch_is_an_error_unless_strict_rows_is_off(tmp_path):
    for lines, n in (("0 1:1\n1 2:1\n", 2), ("0 1:1\n1 2:1\n2 1:1\n0 0:1\n", 4)):
        path = write(tmp_path, HEADER + lines)
        message = (rf"{re.escape(str(path))}: the header \(line 1\) says 3 rows but the file has "
                   rf"{n} data lines \(blank lines count as rows\); pass strict_rows=False")
        with pytest.raises(XCFormatError, match=message):
            load_xc(path)
        X, Y = load_xc(path, strict_rows=False)
        assert X.shape == (n, 10) and Y.shape == (n, 5)


def test_amazon_fixture_header_mismatch_is_reported(data_file):
    path = data_file("amazon670k_partial_test", "amazon_partial_test.txt")
    with pytest.raises(XCFormatError, match="says 153025 rows but the file has 512 data lines"):
        load_xc(path)


def test_header_required_but_missing(tmp_path):
    path = write(tmp_path, "0 1:1\n")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}, line 1: the header must be "
                                                      "'N D L' (three non-negative integers: "
                                                      "rows, features, labels), got '0 1:1'")):
        load_xc(path, header=True)


def test_empty_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}: empty file")):
        load_xc(path)
    with pytest.raises(XCFormatError, match=re.escape(f"{path}: empty file")):
        load_libsvm(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"data file not found: {path}")):
        load_xc(path)
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_libsvm(path)
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_split(path)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_features=0), ValueError, "n_features must be None or >= 1, got 0"),
    (dict(n_labels=2.5), TypeError, "n_labels must be None or an int >= 1, got 2.5"),
    (dict(header="yes"), ValueError, "header must be 'auto', True or False, got 'yes'"),
    (dict(strict_rows=None), ValueError, "strict_rows must be True or False, got None"),
    (dict(strict_rows=1), ValueError, "strict_rows must be True or False, got 1"),
    (dict(header=1), ValueError, "header must be 'auto', True or False, got 1"),
])
def test_load_xc_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        load_xc(write(tmp_path, "0 1:1\n"), **kwargs)


def test_libsvm_errors(tmp_path):
    path = write(tmp_path, "1 1:1\n0 0:1 3:2\n")
    with pytest.raises(XCFormatError, match=re.escape(
            f"{path}, line 2: feature id 0 in a file read as one-based (zero_based=False)")):
        load_libsvm(path, zero_based=False)
    with pytest.raises(XCFormatError, match=re.escape(
            f"{path}, line 2: feature id 3 out of range: n_features=3 (given; ids read as "
            f"zero-based)")):
        load_libsvm(path, n_features=3)
    one_based = write(tmp_path, "1 1:1\n0 5:1\n", "one.svm")
    with pytest.raises(XCFormatError, match=re.escape(
            f"{one_based}, line 2: feature id 5 out of range: n_features=4 (given; one-based "
            f"ids go up to 4): '5:1'")):
        load_libsvm(one_based, n_features=4, zero_based=False)
    with pytest.raises(XCFormatError, match="feature id 5 out of range: n_features=4"):
        load_libsvm(one_based, n_features=4)
    binary = write(tmp_path, "+1 1:1\n", "bin.svm")
    with pytest.raises(XCFormatError, match=re.escape(f"{binary}, line 1: malformed label list")):
        load_libsvm(binary)
    with pytest.raises(ValueError, match="zero_based must be 'auto', True or False, got 1"):
        load_libsvm(path, zero_based=1)
    with pytest.raises(ValueError, match="zero_based must be True or False, got 'auto'"):
        save_libsvm(tmp_path / "x.svm", np.ones((1, 2)), [[0]], zero_based="auto")


def test_split_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"has 2 split column\(s\); column=2 is out of range"):
        read_split(write(tmp_path, "1 2\n3 4\n"), column=2)
    with pytest.raises(ValueError, match="column must be a non-negative int, got -1"):
        read_split(write(tmp_path, "1\n"), column=-1)
    path = write(tmp_path, "1 2\n3\n", "ragged.txt")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}, line 2: expected 2 columns, got 1")):
        read_split(path)
    path = write(tmp_path, "1\n0\n", "zero.txt")
    with pytest.raises(XCFormatError, match=re.escape(
            f"{path}, line 2: expected a 1-based row number, got '0'")):
        read_split(path)
    path = write(tmp_path, "1\n2.5\n", "float.txt")
    with pytest.raises(XCFormatError, match="line 2: expected a 1-based row number, got '2.5'"):
        read_split(path)
    path = write(tmp_path, "\n", "empty.txt")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}: empty split file")):
        read_split(path)
    data = write(tmp_path, "2 2 1\n0 0:1\n0 1:1\n", "all.txt")
    train = write(tmp_path, "1\n5\n", "tr.txt")
    with pytest.raises(ValueError, match=re.escape(
            f"{train} refers to row 5 but {data} has only 2 rows")):
        load_xc_split(data, train)


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match="X and Y must have the same number of rows, got 2 and 1"):
        save_xc(tmp_path / "x.txt", np.ones((2, 3)), [[0]])
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\)"):
        save_xc(tmp_path / "x.txt", np.array([[np.nan, 1.0]]), [[0]])


# ---------------------------------------------------------------------------
# labels_to_csr and check_features
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("labels, kwargs, error, message", [
    ([[0, -1]], {}, ValueError, r"Y\[0\] holds a negative label id; ids must be >= 0"),
    ([[0], [1, 5]], dict(n_labels=5), ValueError,
     r"Y\[1\] holds label id 5 but n_labels=5; ids must be < n_labels"),
    (np.array([0, -2]), {}, ValueError, r"Y\[1\] is a negative class id \(-2\)"),
    ([3, 0], dict(n_labels=3), ValueError, r"Y\[0\] holds label id 3 but n_labels=3"),
    (np.array([0.5, 1.0]), {}, TypeError, "Y as a 1-D array must hold integer class ids"),
    ([[0.5]], {}, TypeError, r"Y\[0\] must be a flat list of integer label ids"),
    ([[0], 1], {}, TypeError, r"Y\[1\] must be a list of label ids \(mixing lists and single ids"),
    ([[[0, 1]]], {}, TypeError, r"Y\[0\] must be a flat list of integer label ids"),
    (np.zeros((2, 2, 2)), {}, ValueError, r"Y must be a 2-D indicator, a 1-D array of class ids "
                                          r"or a list of label lists, got an array of shape"),
    ("abc", {}, TypeError, "Y must be a sparse or dense 0/1 indicator, a list of label lists or "
                           "a 1-D int array, got str"),
    (5, {}, TypeError, "got int"),
    (np.array([[0, 2.0]]), {}, ValueError, "Y must be a 0/1 label indicator; it holds values "
                                           "other than 0 and 1"),
    (sp.csr_matrix(np.ones((2, 4))), dict(n_labels=3), ValueError,
     "Y has 4 label columns but n_labels=3"),
    (np.array([["a"]]), {}, TypeError, "Y must be a numeric 0/1 indicator"),
    ([[0]], dict(n_labels=0), ValueError, "n_labels must be None or >= 1, got 0"),
])
def test_labels_to_csr_errors(labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        labels_to_csr(labels, **kwargs)


def test_labels_to_csr_names_the_argument():
    with pytest.raises(ValueError, match=r"Y_test\[0\] holds a negative label id"):
        labels_to_csr([[-1]], name="Y_test")


@pytest.mark.parametrize("X, kwargs, error, message", [
    (np.ones(3), {}, ValueError, r"X must be 2-D \(n_samples, n_features\), got shape \(3,\)"),
    (np.ones((2, 2, 2)), {}, ValueError, r"X must be 2-D .*got shape \(2, 2, 2\)"),
    (np.ones((2, 3)), dict(n_features=4), ValueError,
     "X has 3 features \\(columns\\) but the model expects n_features=4"),
    (sp.csr_matrix(np.ones((2, 5))), dict(n_features=4), ValueError,
     "X has 5 features \\(columns\\) but the model expects n_features=4"),
    (np.array([[1.0, np.inf]]), {}, ValueError, r"X contains 1 non-finite value\(s\) \(NaN or inf\)"),
    (sp.csr_matrix(np.array([[np.nan, 1.0, np.nan]])), {}, ValueError,
     r"X contains 2 non-finite value\(s\)"),
    (np.array([["a", "b"]]), {}, TypeError, "X must be a SciPy sparse matrix or a numeric 2-D "
                                            "array, got ndarray with dtype <U1"),
    ([[1, 2], [3]], {}, TypeError, "X must be a SciPy sparse matrix or a 2-D array, got list"),
    (np.ones((2, 2), dtype=complex), {}, TypeError, "X must hold real numbers"),
    (sp.csr_matrix(np.ones((2, 2), dtype=complex)), {}, TypeError, "X must hold real numbers"),
    (np.ones((2, 2)), dict(n_features=-1), ValueError, "n_features must be None or >= 1"),
])
def test_check_features_errors(X, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_features(X, **kwargs)


def test_check_features_names_the_argument():
    with pytest.raises(ValueError, match=r"X_valid must be 2-D"):
        check_features(np.ones(2), name="X_valid")


def test_check_features_dense_and_sparse_only():
    """The hash families' variants of the one feature check."""
    dense = check_features(np.ones((2, 3), dtype=np.float64), 3, accept="dense")
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32
    assert dense.flags.c_contiguous
    with pytest.raises(TypeError, match=r"X is a sparse matrix; pass a dense array"):
        check_features(sp.csr_matrix(np.ones((2, 3))), accept="dense")
    with pytest.raises(TypeError, match=r"X must be a scipy.sparse matrix, got ndarray"):
        check_features(np.ones((2, 3)), accept="sparse")
    with pytest.raises(ValueError, match=r"X has 2 features \(columns\) but the hash family "
                                         r"expects n_features=3"):
        check_features(sp.csr_matrix(np.ones((2, 2))), 3, accept="sparse", widen=False,
                       expected_by="the hash family")
    assert check_features(sp.csr_matrix(np.ones((2, 2))), 3).shape == (2, 3)   # widened
    with pytest.raises(ValueError, match=r"accept must be 'any', 'sparse' or 'dense'"):
        check_features(np.ones((2, 3)), accept="csr")


def test_check_features_sums_duplicates_in_the_input_precision():
    """As toarray() does: 1 + 2**-24 + 2**-24 in float64 is 1 + 2**-23, which
    float32 holds; summed in float32 each 2**-24 would round away."""
    M = sp.csr_matrix((np.array([1.0, 2.0**-24, 2.0**-24]), np.zeros(3, np.int32),
                       np.array([0, 3])), shape=(1, 1))
    assert check_features(M).data[0] == np.float32(1 + 2.0**-23) == np.float32(M.toarray()[0, 0])
