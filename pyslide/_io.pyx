# Fast reading and writing of XC-repository / libsvm multi-label text; a kernel module (imports no Python module of ours).
#
# The reader scans the file twice: a counting pass bounds the output sizes
# (rows <= newlines + 1, features = colons, labels <= commas + rows), then a
# parsing pass fills preallocated arrays through raw pointers. Both passes
# are bounded by an explicit end pointer, never by a terminating NUL, so a
# truncated last line cannot make them read past the buffer.
#
# Numbers are parsed by hand: integers digit by digit with an overflow cap,
# decimals as (up to 19 significant digits) x 10^exponent. When the digits fit
# in 2^53 and |exponent| <= 22 both factors are exact doubles, so one IEEE
# multiply or divide gives the correctly rounded double; anything else goes to
# strtod. The double is then rounded to float32, which is exactly what
# np.float32(float(token)) gives.

import numpy as np
cimport numpy as cnp

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, uint8_t
from libc.stdlib cimport strtod, malloc, free
from libc.stdio cimport snprintf
from libc.math cimport log10, floor, isfinite
from libc.string cimport memchr

cnp.import_array()

# Status codes of the parser; pyslide.data turns them into messages.
OK = 0
ERR_LABEL_SYNTAX = 1
ERR_LABEL_NEGATIVE = 2
ERR_LABEL_RANGE = 3
ERR_FEATURE_SYNTAX = 4
ERR_FEATURE_NEGATIVE = 5
ERR_FEATURE_RANGE = 6
ERR_MISSING_COLON = 7
ERR_VALUE_SYNTAX = 8
ERR_VALUE_NONFINITE = 9
ERR_ID_TOO_LARGE = 10

cdef enum:
    C_OK = 0
    C_LABEL_SYNTAX = 1
    C_LABEL_NEGATIVE = 2
    C_LABEL_RANGE = 3
    C_FEATURE_SYNTAX = 4
    C_FEATURE_NEGATIVE = 5
    C_FEATURE_RANGE = 6
    C_MISSING_COLON = 7
    C_VALUE_SYNTAX = 8
    C_VALUE_NONFINITE = 9
    C_ID_TOO_LARGE = 10

cdef int64_t MAX_ID = 2147483647

# Powers of ten exactly representable as doubles.
cdef double POW10[23]
cdef int _i
for _i in range(23):
    POW10[_i] = 10.0 ** _i


cdef inline bint is_space(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\r' or c == b'\v' or c == b'\f'


cdef inline bint is_digit(char c) noexcept nogil:
    return c >= b'0' and c <= b'9'


cdef inline bint ends_token(const char* p, const char* end) noexcept nogil:
    return p >= end or is_space(p[0])


cdef struct ParseState:
    int status
    int64_t row            # row of the error
    int64_t position       # byte offset of the offending token
    int64_t bad_id         # the id that was out of range
    int64_t n_rows
    int64_t n_features_used
    int64_t n_labels_used
    int64_t max_feature
    int64_t min_feature
    int64_t max_label
    bint unsorted          # some row has ids out of order or repeated


cdef inline void fail(ParseState* state, int status, int64_t row, int64_t position,
                      int64_t bad_id) noexcept nogil:
    """Record why parsing stopped: the caller returns right after."""
    state.status = status
    state.row = row
    state.position = position
    state.bad_id = bad_id


cdef inline const char* parse_id(const char* p, const char* end, int64_t* out) noexcept nogil:
    """Non-negative decimal integer; NULL if no digit, (p with out = -1) if too large."""
    cdef int64_t value = 0
    cdef const char* start = p
    while p < end and is_digit(p[0]):
        if value <= MAX_ID:
            value = value * 10 + (p[0] - 48)
        p += 1
    if p == start:
        return NULL
    out[0] = value if value <= MAX_ID else -1
    return p


cdef const char* parse_value_slow(const char* start, const char* p, double* out) noexcept nogil:
    """strtod on a NUL-terminated copy of [start, p)."""
    cdef Py_ssize_t n = p - start
    cdef char small[64]
    cdef char* copy = small
    cdef char* stop
    cdef Py_ssize_t i
    if n >= 64:
        copy = <char*>malloc(n + 1)
        if copy == NULL:
            return NULL
    for i in range(n):
        copy[i] = start[i]
    copy[n] = 0
    out[0] = strtod(copy, &stop)
    if stop != copy + n:
        p = NULL
    if copy != small:
        free(copy)
    return p


cdef inline const char* parse_value(const char* p, const char* end, double* out) noexcept nogil:
    """Decimal number (sign, digits, '.', digits, exponent); NULL if malformed."""
    cdef const char* start = p
    cdef bint negative = False
    cdef uint64_t mantissa = 0
    cdef int n_significant = 0
    cdef int64_t exponent = 0
    cdef int64_t exponent_part = 0
    cdef bint any_digit = False
    cdef bint inexact = False
    cdef bint exponent_negative = False
    cdef int digit
    cdef double value
    if p < end and (p[0] == b'-' or p[0] == b'+'):
        negative = p[0] == b'-'
        p += 1
    while p < end and is_digit(p[0]):
        digit = p[0] - 48
        any_digit = True
        if n_significant < 19:
            if mantissa != 0 or digit != 0:
                mantissa = mantissa * 10 + digit
                n_significant += 1
        else:
            exponent += 1
            if digit != 0:
                inexact = True
        p += 1
    if p < end and p[0] == b'.':
        p += 1
        while p < end and is_digit(p[0]):
            digit = p[0] - 48
            any_digit = True
            if n_significant < 19:
                if mantissa != 0 or digit != 0:
                    mantissa = mantissa * 10 + digit
                    n_significant += 1
                exponent -= 1
            elif digit != 0:
                inexact = True
            p += 1
    if not any_digit:
        return NULL
    if p < end and (p[0] == b'e' or p[0] == b'E'):
        p += 1
        if p < end and (p[0] == b'-' or p[0] == b'+'):
            exponent_negative = p[0] == b'-'
            p += 1
        if p >= end or not is_digit(p[0]):
            return NULL
        while p < end and is_digit(p[0]):
            if exponent_part < 100000:
                exponent_part = exponent_part * 10 + (p[0] - 48)
            p += 1
        exponent += -exponent_part if exponent_negative else exponent_part
    if mantissa == 0:
        value = 0.0
    elif not inexact and mantissa <= (<uint64_t>1 << 53) and -22 <= exponent <= 22:
        value = <double>mantissa
        if exponent >= 0:
            value = value * POW10[exponent]
        else:
            value = value / POW10[-exponent]
    else:
        return parse_value_slow(start, p, out)
    out[0] = -value if negative else value
    return p


cdef inline bint looks_non_finite(const char* p, const char* end) noexcept nogil:
    if p < end and (p[0] == b'-' or p[0] == b'+'):
        p += 1
    return p < end and (p[0] == b'n' or p[0] == b'N' or p[0] == b'i' or p[0] == b'I')


cdef void count_pass(const char* p, const char* end, int64_t* newlines,
                     int64_t* colons, int64_t* commas) noexcept nogil:
    # Branch-free compares summed in 32-bit block counters: GCC vectorises
    # this loop, twice as fast as memchr on bytes as frequent as ':'.
    cdef const uint8_t* text = <const uint8_t*>p
    cdef int64_t n = end - p, i = 0, j, stop
    cdef int64_t n_newlines = 0, n_colons = 0, n_commas = 0
    cdef uint32_t block_newlines, block_colons, block_commas
    while i < n:
        stop = i + 65536 if i + 65536 < n else n
        block_newlines = 0
        block_colons = 0
        block_commas = 0
        for j in range(i, stop):
            block_newlines += text[j] == 10
            block_colons += text[j] == 58
            block_commas += text[j] == 44
        n_newlines += block_newlines
        n_colons += block_colons
        n_commas += block_commas
        i = stop
    newlines[0] = n_newlines
    colons[0] = n_colons
    commas[0] = n_commas


cdef void parse_pass(const char* buffer, int64_t length, int64_t start,
                     int64_t feature_bound, int64_t label_bound,
                     int64_t* x_indptr, int32_t* x_indices, float* x_data,
                     int64_t* y_indptr, int32_t* y_indices,
                     ParseState* state) noexcept nogil:
    """Parse lines from ``start``; a bound < 0 means "no bound"."""
    cdef const char* end = buffer + length
    cdef const char* p = buffer + start
    cdef const char* line_start
    cdef const char* line_end
    cdef const char* q
    cdef const char* token
    cdef int64_t row = 0, n_x = 0, n_y = 0
    cdef int64_t ident, previous
    cdef int64_t max_feature = -1, min_feature = MAX_ID + 1, max_label = -1
    cdef double value
    cdef float value32
    cdef bint unsorted = False
    x_indptr[0] = 0
    y_indptr[0] = 0
    while p < end:
        line_end = <const char*>memchr(p, b'\n', end - p)
        if line_end == NULL:
            line_end = end
        line_start = p
        # labels: "l1,l2,..." unless the line starts with white space or
        # its first token is already a feature "f:v"
        previous = -1
        if p < line_end and not is_space(p[0]):
            token = p
            if p[0] == b'-':
                fail(state, C_LABEL_NEGATIVE, row, p - buffer, -1)
                return
            q = parse_id(p, line_end, &ident)
            if q == NULL:
                fail(state, C_LABEL_SYNTAX, row, line_start - buffer, -1)
                return
            if q < line_end and q[0] == b':':
                pass  # a feature: this line has no labels
            else:
                while True:
                    if ident < 0:
                        fail(state, C_ID_TOO_LARGE, row, token - buffer, -1)
                        return
                    if label_bound >= 0 and ident >= label_bound:
                        fail(state, C_LABEL_RANGE, row, token - buffer, ident)
                        return
                    if ident <= previous:
                        unsorted = True
                    previous = ident
                    if ident > max_label:
                        max_label = ident
                    y_indices[n_y] = <int32_t>ident
                    n_y += 1
                    p = q
                    if p < line_end and p[0] == b',':
                        p += 1
                        token = p
                        if p < line_end and p[0] == b'-':
                            fail(state, C_LABEL_NEGATIVE, row, token - buffer, -1)
                            return
                        q = parse_id(p, line_end, &ident)
                        if q == NULL:
                            fail(state, C_LABEL_SYNTAX, row, line_start - buffer, -1)
                            return
                        continue
                    if not ends_token(p, line_end):
                        fail(state, C_LABEL_SYNTAX, row, line_start - buffer, -1)
                        return
                    break
        # features: "f:v" tokens separated by white space
        previous = -1
        while True:
            while p < line_end and is_space(p[0]):
                p += 1
            if p >= line_end:
                break
            token = p
            if p[0] == b'-':
                fail(state, C_FEATURE_NEGATIVE, row, token - buffer, -1)
                return
            q = parse_id(p, line_end, &ident)
            if q == NULL:
                fail(state, C_FEATURE_SYNTAX, row, token - buffer, -1)
                return
            if q >= line_end or q[0] != b':':
                fail(state, C_MISSING_COLON if ends_token(q, line_end) else C_FEATURE_SYNTAX, row, token - buffer, -1)
                return
            if ident < 0:
                fail(state, C_ID_TOO_LARGE, row, token - buffer, -1)
                return
            if feature_bound >= 0 and ident >= feature_bound:
                fail(state, C_FEATURE_RANGE, row, token - buffer, ident)
                return
            p = parse_value(q + 1, line_end, &value)
            if p == NULL or not ends_token(p, line_end):
                fail(state, C_VALUE_NONFINITE if looks_non_finite(q + 1, line_end) else C_VALUE_SYNTAX, row, token - buffer, -1)
                return
            value32 = <float>value
            if not isfinite(value32):
                fail(state, C_VALUE_NONFINITE, row, token - buffer, -1)
                return
            if ident <= previous:
                unsorted = True
            previous = ident
            if ident > max_feature:
                max_feature = ident
            if ident < min_feature:
                min_feature = ident
            x_indices[n_x] = <int32_t>ident
            x_data[n_x] = value32
            n_x += 1
        row += 1
        x_indptr[row] = n_x
        y_indptr[row] = n_y
        p = line_end + 1
    state.status = C_OK
    state.n_rows = row
    state.n_features_used = n_x
    state.n_labels_used = n_y
    state.max_feature = max_feature
    state.min_feature = min_feature
    state.max_label = max_label
    state.unsorted = unsorted


def parse_xc(const uint8_t[::1] buffer, Py_ssize_t start=0,
             int64_t feature_bound=-1, int64_t label_bound=-1):
    """Parse XC / libsvm multi-label lines from ``buffer[start:]``.

    Every line (up to ``\\n`` or the end of the buffer) is one row, blank
    lines included; a final ``\\n`` does not start an extra row. Ids are
    stored as written (no one-based shift) and checked against the bounds
    (``< 0``: unchecked).

    Returns
    -------
    result : dict
        ``status`` (one of the ``ERR_*`` codes, 0 when fine), and on error
        ``row`` (0-based, counted from ``start``), ``position`` (byte offset
        of the offending token) and ``bad_id``; otherwise ``x_indptr``,
        ``x_indices``, ``x_data``, ``y_indptr``, ``y_indices`` (int64 indptr,
        int32 ids, float32 values), ``max_feature``, ``min_feature``,
        ``max_label`` (-1 when none) and ``unsorted`` (some row lists ids
        out of order or twice).
    """
    cdef int64_t length = buffer.shape[0]
    cdef const char* data = <const char*>&buffer[0] if length > 0 else <const char*>NULL
    cdef int64_t newlines = 0, colons = 0, commas = 0
    cdef ParseState state
    if start < 0 or start > length:
        raise ValueError(f"start must be in [0, {length}], got {start}")
    if length - start > 0:
        with nogil:
            count_pass(data + start, data + length, &newlines, &colons, &commas)
    cdef int64_t max_rows = newlines + 1
    x_indptr = np.empty(max_rows + 1, dtype=np.int64)
    y_indptr = np.empty(max_rows + 1, dtype=np.int64)
    x_indices = np.empty(max(colons, 1), dtype=np.int32)
    x_data = np.empty(max(colons, 1), dtype=np.float32)
    y_indices = np.empty(max(commas + max_rows, 1), dtype=np.int32)
    cdef int64_t[::1] xp = x_indptr
    cdef int64_t[::1] yp = y_indptr
    cdef int32_t[::1] xi = x_indices
    cdef float[::1] xd = x_data
    cdef int32_t[::1] yi = y_indices
    state.status = C_OK
    state.row = 0
    state.position = 0
    state.bad_id = -1
    state.n_rows = 0
    state.n_features_used = 0
    state.n_labels_used = 0
    state.max_feature = -1
    state.min_feature = -1
    state.max_label = -1
    state.unsorted = False
    if length - start > 0:
        with nogil:
            parse_pass(data, length, start, feature_bound, label_bound,
                       &xp[0], &xi[0], &xd[0], &yp[0], &yi[0], &state)
    else:
        xp[0] = 0
        yp[0] = 0
    if state.status != C_OK:
        return dict(status=state.status, row=state.row, position=state.position,
                    bad_id=state.bad_id)
    n_rows = state.n_rows
    return dict(
        status=OK,
        n_rows=n_rows,
        x_indptr=x_indptr[:n_rows + 1],
        x_indices=x_indices[:state.n_features_used],
        x_data=x_data[:state.n_features_used],
        y_indptr=y_indptr[:n_rows + 1],
        y_indices=y_indices[:state.n_labels_used],
        max_feature=state.max_feature,
        min_feature=state.min_feature if state.n_features_used else -1,
        max_label=state.max_label,
        unsorted=bool(state.unsorted),
    )


def parse_float_token(bytes token):
    """The float32 the parser reads from ``token`` (None if malformed); for tests."""
    cdef const char* p = token
    cdef const char* end = p + len(token)
    cdef double value
    cdef const char* q = parse_value(p, end, &value)
    if q == NULL or q != end:
        return None
    return np.float32(<float>value)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

cdef inline char* write_uint(char* out, uint64_t value) noexcept nogil:
    cdef char digits[24]
    cdef int n = 0
    if value == 0:
        out[0] = b'0'
        return out + 1
    while value > 0:
        digits[n] = <char>(48 + value % 10)
        value //= 10
        n += 1
    while n > 0:
        n -= 1
        out[0] = digits[n]
        out += 1
    return out


cdef inline char* write_float(char* out, float value) noexcept nogil:
    """Shortest plain decimal (6 to 9 significant digits) that reads back as ``value``.

    The read-back check uses the parser's own arithmetic (digits / 10^scale,
    both exact doubles), so the writer and the reader agree bit for bit.
    Values outside [1e-7, 1e15) use ``%.9g``.
    """
    cdef double x = value
    cdef double scaled, back
    cdef uint64_t digits = 0
    cdef int exponent10, scale = 0, precision, n_digits, i
    cdef char text[24]
    cdef bint found = False
    if value == 0:
        out[0] = b'0'
        return out + 1
    if value < 0:
        out[0] = b'-'
        out += 1
        x = -x
    if x >= 1e-7 and x < 1e15:
        exponent10 = <int>floor(log10(x))
        for precision in range(6, 10):
            scale = precision - 1 - exponent10
            scaled = x * POW10[scale] if scale >= 0 else x / POW10[-scale]
            digits = <uint64_t>(scaled + 0.5)
            back = <double>digits / POW10[scale] if scale >= 0 else <double>digits * POW10[-scale]
            if <float>back == <float>x:
                found = True
                break
    if not found:
        n_digits = snprintf(text, 24, "%.9g", x)
        for i in range(n_digits):
            out[i] = text[i]
        return out + n_digits
    while scale > 0 and digits % 10 == 0:
        digits //= 10
        scale -= 1
    if scale <= 0:
        out = write_uint(out, digits)
        for i in range(-scale):
            out[0] = b'0'
            out += 1
        return out
    n_digits = <int>(write_uint(text, digits) - text)
    if n_digits > scale:
        for i in range(n_digits - scale):
            out[0] = text[i]
            out += 1
        out[0] = b'.'
        out += 1
        for i in range(n_digits - scale, n_digits):
            out[0] = text[i]
            out += 1
    else:
        out[0] = b'0'
        out[1] = b'.'
        out += 2
        for i in range(scale - n_digits):
            out[0] = b'0'
            out += 1
        for i in range(n_digits):
            out[0] = text[i]
            out += 1
    return out


# Worst-case text sizes, for sizing the output buffer.
MAX_LABEL_CHARS = 12      # 10 digits + ','
MAX_FEATURE_CHARS = 30    # ' ' + 10 digits + ':' + 17-char float
MAX_LINE_EXTRA = 2


def format_rows(const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                const float[::1] x_data, const int64_t[::1] y_indptr,
                const int32_t[::1] y_indices, Py_ssize_t row_start, Py_ssize_t row_end,
                int64_t feature_offset, uint8_t[::1] out):
    """Write rows ``[row_start, row_end)`` as XC lines into ``out``; returns bytes written.

    ``out`` must hold ``MAX_LABEL_CHARS`` per label, ``MAX_FEATURE_CHARS``
    per feature and ``MAX_LINE_EXTRA`` per row. Feature ids are written
    plus ``feature_offset`` (1 for one-based libsvm).
    """
    cdef char* start = <char*>&out[0]
    cdef char* p = start
    cdef Py_ssize_t row
    cdef int64_t j
    with nogil:
        for row in range(row_start, row_end):
            for j in range(y_indptr[row], y_indptr[row + 1]):
                if j > y_indptr[row]:
                    p[0] = b','
                    p += 1
                p = write_uint(p, <uint64_t>y_indices[j])
            for j in range(x_indptr[row], x_indptr[row + 1]):
                p[0] = b' '
                p += 1
                p = write_uint(p, <uint64_t>(x_indices[j] + feature_offset))
                p[0] = b':'
                p += 1
                p = write_float(p, x_data[j])
            p[0] = b'\n'
            p += 1
    return p - start


def format_float(float value):
    """The text the writer produces for ``value``; for tests."""
    cdef char text[40]
    cdef char* end = write_float(text, value)
    return (<char*>text)[:end - text]
