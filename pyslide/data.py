"""Data, the public face: re-exports synthetic, checks and datafiles; imports only those three (never the model).

Three modules hold one concern each: :mod:`pyslide.synthetic` (``make_xc``
and its presets), :mod:`pyslide.checks` (``check_features``,
``labels_to_csr``) and :mod:`pyslide.datafiles` (XC / libsvm files and
split files). ``pyslide.data`` gathers their public names in one place.

Everything here returns ``scipy.sparse.csr_matrix`` objects with float32
values and int32 indices: features ``X`` (``n_samples x n_features``) and a
0/1 label indicator ``Y`` (``n_samples x n_labels``).
"""
from .checks import check_features, labels_to_csr
from .datafiles import (RowCountError, XCFormatError, header_mismatch, load_libsvm, load_xc,
                        load_xc_split, read_labelled, read_labelled_files, read_split,
                        read_xc_header, save_libsvm, save_xc, why_no_features)
from .synthetic import PRESETS, make_xc

__all__ = [
    "make_xc", "PRESETS", "load_xc", "save_xc", "load_libsvm", "save_libsvm",
    "read_split", "load_xc_split", "labels_to_csr", "check_features", "XCFormatError",
    "RowCountError", "read_xc_header", "header_mismatch", "why_no_features", "read_labelled",
    "read_labelled_files",
]
