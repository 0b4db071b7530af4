"""scikit-learn's estimator contract over Network (SlideClassifier) and P@k / nDCG@k scorers; imports scikit-learn (the optional [sklearn] extra), network, layers, optim, callbacks, metrics, checks and _validate (never the CLI).

``pip install ".[sklearn]"`` (in the source folder) brings scikit-learn; nothing else in
pyslide imports this module, so pyslide works without it. The estimator
keeps its parameters as given and builds a fresh ``pyslide.Network`` in
every ``fit``, so ``clone``, ``Pipeline``, ``GridSearchCV`` and
``cross_val_score`` treat it like any scikit-learn classifier.
"""
import numbers

import numpy as np
import scipy.sparse as sp

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, check_random_state, column_or_1d
except ImportError as error:  # the optional extra is missing
    raise ImportError("pyslide.sklearn needs scikit-learn: pip install \".[sklearn]\" in pyslide's "
                      "source folder (or pip install \"scikit-learn>=1.0\")") from error

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # older versions validate through a method
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

from . import metrics
from ._validate import choice, integer
from .callbacks import EarlyStopping
from .checks import labels_to_csr
from .layers import Dense, Sampled
from .network import Network
from .optim import SGD, Adam, AdamW

__all__ = ["SlideClassifier", "precision_at_k_scorer", "ndcg_at_k_scorer"]

_OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}
# rows × outputs scored per predict_topk call when a dense matrix is built:
# bounds the ids and scores buffers beside the result
_SCORES_PER_CHUNK = 1 << 22


class SlideClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier training a ``pyslide.Network``: multi-label
    (extreme classification) or multi-class.

    The network is ``Dense`` hidden layers of ``hidden_layer_sizes`` (ReLU)
    and a ``Sampled`` output layer with one neuron per label or class, as in
    ``pyslide.Network``. Parameters are stored as given and checked by
    ``fit``, which builds a new network each time (``clone``,
    ``GridSearchCV`` and ``cross_val_score`` rely on that).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (128,)
        Units of each hidden ``pyslide.Dense`` layer, input side first.
    dropout : float or None, default None
        Dropout of every hidden layer; None is ``pyslide.Dense``'s default (0.2).
    loss : {"softmax", "bce"}, default "softmax"
        As ``pyslide.Network``: softmax cross-entropy against each row's
        labels normalised to sum 1, or independent sigmoids.
    active, share, hash : default None, "batch", "auto"
        The output layer's sampling, as ``pyslide.Sampled`` takes them:
        active neurons per batch (or per sample with ``share="sample"``),
        and the hash family (None: uniform sampling). With up to 8,192
        labels the default computes every output exactly.
    optimizer : {"adam", "adamw", "sgd"} or a pyslide optimizer, default "adam"
        A name, combined with ``lr`` and ``weight_decay``, or an object such
        as ``pyslide.Adam(lr=2e-3, schedule=pyslide.CosineDecay(10))`` (then
        leave ``lr`` and ``weight_decay`` None).
    lr, weight_decay : float or None, default None
        Learning rate and decoupled weight decay of a named optimizer; None
        keeps the optimizer's default (Adam: lr 1e-3, no decay; AdamW: decay
        0.01; SGD: lr 0.1).
    epochs : int, default 10
        Passes over the training rows (fewer with early stopping).
    batch_size : int, default 128
    validation_split : float in [0, 1), default 0.0
        Fraction of the training rows held out (seeded by ``random_state``)
        and evaluated after every epoch; their scores go to ``history_``.
    early_stopping : bool, default False
        Stop when the validation loss has not improved for ``patience``
        epochs and keep the best epoch's network (``pyslide.EarlyStopping``);
        needs ``validation_split > 0``.
    patience : int, default 2
    top_k : int, default 5
        Labels ``predict`` marks per row for a multi-label model, and the
        default ``k`` of ``predict_topk``.
    max_dense_bytes : int, default 2**30
        The largest dense rows × labels result ``decision_function``,
        ``predict_proba`` and a dense multi-label ``predict`` may build
        (bytes); above it they raise ``MemoryError`` instead of exhausting
        memory on a wide output layer.
    threads : int or None, default None
        Threads of the kernels (None: the available cores). With more than
        one thread lock-free updates race, so two fits differ slightly;
        ``threads=1`` makes ``fit`` reproducible bit for bit.
    random_state : int, RandomState or None, default 0
        An int is the network's ``seed`` (weights, hashing, shuffling,
        sampling, the validation rows); None or a ``RandomState`` draws one.
    verbose : {0, 1, 2}, default 0
        As ``Network.fit``: silent, a progress bar, or a line per epoch.

    Attributes
    ----------
    classes_ : ndarray
        The labels: ``0 .. n_labels - 1`` (the columns of the indicator) for
        a multi-label ``y``, the sorted distinct values of a 1-D ``y``.
    multilabel_ : bool
        Whether ``fit`` saw a 2-D label indicator (else one class per row).
    n_features_in_ : int
        Width of ``X``.
    network_ : pyslide.Network
        The trained network.
    history_ : dict of lists
        ``Network.fit``'s per-epoch ``loss``, ``time`` and validation scores.
    best_epoch_ : int
        With ``early_stopping``, the epoch whose network was kept.

    Examples
    --------
    >>> from sklearn.preprocessing import MultiLabelBinarizer
    >>> Y = MultiLabelBinarizer(sparse_output=True).fit_transform(tag_lists)  # doctest: +SKIP
    >>> clf = SlideClassifier(hidden_layer_sizes=(128,), epochs=5).fit(X, Y)  # doctest: +SKIP
    >>> clf.predict(X[:3])      # sparse indicator of each row's top 5   # doctest: +SKIP
    >>> clf.score(X_test, Y_test)                                    # P@1  # doctest: +SKIP
    """

    def __init__(self, hidden_layer_sizes=(128,), dropout=None, loss="softmax", active=None,
                 share="batch", hash="auto", optimizer="adam", lr=None, weight_decay=None,
                 epochs=10, batch_size=128, validation_split=0.0, early_stopping=False,
                 patience=2, top_k=5, max_dense_bytes=2**30, threads=None, random_state=0,
                 verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.loss = loss
        self.active = active
        self.share = share
        self.hash = hash
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.top_k = top_k
        self.max_dense_bytes = max_dense_bytes
        self.threads = threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ tags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        # lock-free (HogWild) updates make multi-threaded fits differ slightly
        tags.non_deterministic = self.threads != 1
        return tags

    def _more_tags(self):
        # the same tags for scikit-learn < 1.6
        return {"multilabel": True, "X_types": ["2darray", "sparse"],
                "non_deterministic": self.threads != 1}

    # ------------------------------------------------------------ fit

    def fit(self, X, y):
        """Train a new network on ``X`` and ``y``.

        Parameters
        ----------
        X : sparse matrix or array-like, shape (n_samples, n_features)
            Any SciPy sparse format (e.g. ``TfidfVectorizer`` output) or dense.
        y : label indicator, shape (n_samples, n_labels), or 1-D labels
            A sparse or dense 0/1 indicator (``MultiLabelBinarizer`` output;
            multi-label), or one class per row (any values; multi-class).
            Lists of label lists go through ``MultiLabelBinarizer`` first.

        Returns
        -------
        self
        """
        _refuse_label_lists(y)
        X, y = _validate_data(self, X, y, accept_sparse="csr", dtype=np.float32,
                              multi_output=True)
        targets, classes, label_format = _encode_targets(y)
        network = Network(X.shape[1], _estimator_layers(self, len(classes)), loss=self.loss,
                          optimizer=_estimator_optimizer(self), threads=self.threads,
                          seed=_estimator_seed(self))
        callbacks = _estimator_callbacks(self)
        network.fit(X, targets, epochs=self.epochs, batch_size=self.batch_size,
                    validation_split=self.validation_split, callbacks=callbacks,
                    verbose=self.verbose)
        # the fitted state is set together, once training succeeded
        self.classes_ = classes
        self.multilabel_ = label_format is not None
        self._label_format = label_format
        self.network_ = network
        self.history_ = {key: list(values) for key, values in network.history_.items()}
        self.__dict__.pop("best_epoch_", None)       # from an earlier fit
        if callbacks and getattr(network, "best_epoch_", None) is not None:
            self.best_epoch_ = network.best_epoch_
        return self

    # ------------------------------------------------------------ predict

    def _check_X(self, X):
        check_is_fitted(self)
        return _validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)

    def _topk_ids(self, X, k):
        """Output ids (n, k) best first, -1 beyond the number of outputs."""
        return self.network_.predict_topk(self._check_X(X), k=k)[0]

    def predict_topk(self, X, k=None):
        """Each row's ``k`` best labels and their scores, best first.

        Memory stays ``n_samples × k`` however many labels the model has:
        the way to rank on wide output layers.

        Parameters
        ----------
        X : sparse matrix or array-like, shape (n_samples, n_features)
        k : int or None
            Labels per row (at most the number of labels); None uses
            ``top_k`` (or every label, when there are fewer).

        Returns
        -------
        labels : ndarray, shape (n_samples, k)
            Entries of ``classes_`` (label columns for a multi-label model).
        scores : ndarray of float32, shape (n_samples, k)
            The network's logits.
        """
        check_is_fitted(self)
        if k is None:
            k = min(integer(self.top_k, "top_k", 1), len(self.classes_))
        k = integer(k, "k", 1)
        if k > len(self.classes_):
            raise ValueError(f"k={k} but the model has {len(self.classes_)} labels; ask for at "
                             f"most that many")
        ids, scores = self.network_.predict_topk(self._check_X(X), k=k)
        return self.classes_[ids], scores

    def predict(self, X):
        """Predicted labels.

        Multi-label: a 0/1 indicator of each row's ``top_k`` best labels: a
        SciPy CSR matrix if ``fit`` was given a sparse ``y`` (``top_k``
        entries a row, whatever the label count), else a dense array of
        ``y``'s dtype (refused above ``max_dense_bytes``).
        Multi-class: a 1-D array of ``classes_`` entries.
        """
        check_is_fitted(self)
        if not self.multilabel_:
            return self.classes_[self._topk_ids(X, 1)[:, 0]]
        n_labels = len(self.classes_)
        k = min(integer(self.top_k, "top_k", 1), n_labels)
        ids = self._topk_ids(X, k)
        layout, dtype = self._label_format
        if layout == "dense":
            self._check_dense(ids.shape[0], n_labels, np.dtype(dtype).itemsize, "predict")
        n = ids.shape[0]
        indicator = sp.csr_matrix((np.ones(n * k, dtype=dtype), ids.ravel(),
                                   np.arange(0, n * k + 1, k)), shape=(n, n_labels))
        indicator.sort_indices()
        return indicator if layout == "sparse" else indicator.toarray()

    def decision_function(self, X):
        """The network's logits for every label: (n_samples, n_labels), or
        (n_samples,) for two classes (the log-odds of ``classes_[1]``).

        Dense float32: rows × labels × 4 bytes. Above ``max_dense_bytes`` it
        raises ``MemoryError``; ``predict_topk`` gives each row's best labels
        in ``n_samples × k`` memory.
        """
        X = self._check_X(X)
        n_outputs = len(self.classes_)
        self._check_dense(X.shape[0], n_outputs, 4, "decision_function")
        logits = self._logits(X)
        if n_outputs == 2 and not self.multilabel_:
            log_proba = self._log_proba(logits)
            return log_proba[:, 1] - log_proba[:, 0]
        return logits

    def predict_proba(self, X):
        """Probabilities (n_samples, n_labels), float64.

        ``loss="softmax"``: the softmax over the labels (a row sums to 1).
        ``loss="bce"``: each label's sigmoid; for a multi-class model they
        are divided by their row's sum (one-vs-rest, as scikit-learn's
        ``LogisticRegression``). Dense: rows × labels × 8 bytes. Above
        ``max_dense_bytes`` it raises ``MemoryError``; ``predict_topk`` gives
        each row's best labels in ``n_samples × k`` memory.
        """
        X = self._check_X(X)
        self._check_dense(X.shape[0], len(self.classes_), 8, "predict_proba")
        return np.exp(self._log_proba(self._logits(X)))

    def _log_proba(self, logits):
        z = logits.astype(np.float64)
        if self.loss == "softmax":
            z -= z.max(axis=1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        log_sigmoid = -np.logaddexp(0.0, -z)
        if self.multilabel_:
            return log_sigmoid
        top = log_sigmoid.max(axis=1, keepdims=True)
        return log_sigmoid - top - np.log(np.exp(log_sigmoid - top).sum(axis=1, keepdims=True))

    def _logits(self, X):
        """Dense logits of every output, from ``Network.predict_topk`` over
        all outputs in row blocks (the network's public scoring path)."""
        n, n_outputs = X.shape[0], len(self.classes_)
        logits = np.empty((n, n_outputs), dtype=np.float32)
        rows = max(1, _SCORES_PER_CHUNK // n_outputs)
        for start in range(0, n, rows):
            ids, scores = self.network_.predict_topk(X[start:start + rows], k=n_outputs)
            np.put_along_axis(logits[start:start + len(ids)], ids.astype(np.intp), scores, 1)
        return logits

    def _check_dense(self, n_rows, n_cols, itemsize, method):
        limit = integer(self.max_dense_bytes, "max_dense_bytes", 1)
        need = n_rows * n_cols * itemsize
        if need > limit:
            raise MemoryError(
                f"{method}: a dense {n_rows} x {n_cols} result takes {need:,} bytes, above "
                f"max_dense_bytes={limit:,}; use predict_topk(X, k) for each row's best "
                f"labels, pass fewer rows at a time, or raise max_dense_bytes")

    # ------------------------------------------------------------ score

    def score(self, X, y):
        """Precision at 1 of the model on ``X`` against ``y`` (for a
        multi-class model, its accuracy). ``GridSearchCV`` and
        ``cross_val_score`` use it unless given ``scoring``."""
        return _TopKScorer("p", 1)(self, X, y)


# The builders fit calls (module functions keep the estimator class to its API).


def _estimator_layers(model, n_outputs):
    """The network's layers from the estimator's parameters."""
    sizes = model.hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                        f"got {sizes!r}")
    hidden = [Dense(integer(units, "hidden_layer_sizes values", 1), dropout=model.dropout)
              for units in sizes]
    if not hidden and model.share == "batch":
        raise ValueError("hidden_layer_sizes is empty, but the output's share='batch' "
                         "needs a hidden layer; give one, or use share='sample'")
    return hidden + [Sampled(n_outputs, hash=model.hash, active=model.active,
                             share=model.share)]


def _estimator_optimizer(model):
    """The optimizer from the estimator's ``optimizer``, ``lr`` and ``weight_decay``."""
    if not isinstance(model.optimizer, str):
        if model.lr is not None or model.weight_decay is not None:
            raise ValueError("lr and weight_decay apply to an optimizer given by name; "
                             "with an optimizer object set them inside it (got "
                             f"optimizer={model.optimizer!r}, lr={model.lr!r}, "
                             f"weight_decay={model.weight_decay!r})")
        return model.optimizer   # Network checks its type
    kind = _OPTIMIZERS[choice(model.optimizer, "optimizer", tuple(_OPTIMIZERS))]
    given = {name: value for name, value in (("lr", model.lr),
                                             ("weight_decay", model.weight_decay))
             if value is not None}
    return kind(**given)


def _estimator_seed(model):
    """The network's seed from ``random_state``."""
    if isinstance(model.random_state, numbers.Integral) and \
            not isinstance(model.random_state, bool):
        return integer(model.random_state, "random_state", 0)
    if model.random_state is not None and \
            not isinstance(model.random_state, np.random.RandomState):
        raise TypeError(f"random_state must be an int >= 0, a numpy RandomState or None, "
                        f"got {model.random_state!r}")
    return int(check_random_state(model.random_state).randint(np.iinfo(np.int32).max))


def _estimator_callbacks(model):
    """``fit``'s callbacks: early stopping when asked for."""
    if not isinstance(model.early_stopping, bool):
        raise TypeError(f"early_stopping must be True or False, got {model.early_stopping!r}")
    if not model.early_stopping:
        return None
    if isinstance(model.validation_split, numbers.Real) and model.validation_split == 0:
        raise ValueError("early_stopping=True watches held-out rows: set validation_split "
                         "> 0 (e.g. 0.1)")
    return [EarlyStopping(patience=model.patience)]


def _true_labels(model, y):
    """``y`` as a CSR indicator over the model's outputs (scoring)."""
    _refuse_label_lists(y)
    if model.multilabel_:
        y = y if sp.issparse(y) else np.asarray(y)
        if y.ndim != 2 or y.shape[1] != len(model.classes_):
            raise ValueError(f"y must be a label indicator with the {len(model.classes_)} "
                             f"columns the model was fitted on, got shape {y.shape}")
        return labels_to_csr(y, name="y")
    position = {label: i for i, label in enumerate(model.classes_.tolist())}
    ids = np.array([position.get(label, -1) for label in column_or_1d(y).tolist()],
                   dtype=np.int64)
    known = ids >= 0
    # a class the model never saw is a row no prediction can hit
    indptr = np.concatenate([[0], np.cumsum(known)])
    return sp.csr_matrix((np.ones(int(known.sum()), dtype=np.float32), ids[known], indptr),
                         shape=(len(ids), len(model.classes_)))


def _encode_targets(y):
    """The network's labels (a CSR indicator, or class ids), ``classes_``,
    and for a multi-label ``y`` its (layout, dtype), in which ``predict``
    answers (None for one class per row)."""
    if sp.issparse(y) or (y.ndim == 2 and y.shape[1] > 1):
        kind = type_of_target(y)
        if kind != "multilabel-indicator":
            check_classification_targets(y)   # names continuous targets
            raise ValueError(
                f"y: a 2-D y must be a 0/1 label indicator (multi-label), got {kind!r} "
                f"values; turn lists of labels into an indicator with "
                f"sklearn.preprocessing.MultiLabelBinarizer(sparse_output=True)")
        layout = "sparse" if sp.issparse(y) else "dense"
        return labels_to_csr(y, name="y"), np.arange(y.shape[1]), (layout, y.dtype)
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    classes, class_ids = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y holds one class only ({classes.tolist()[0]!r}); a classifier "
                         f"needs at least 2 classes")
    return class_ids.astype(np.int64).ravel(), classes, None


def _refuse_label_lists(y):
    """scikit-learn's targets are indicators or one label per row: a list of
    label lists would be read as one of them, wrongly."""
    if sp.issparse(y) or isinstance(y, np.ndarray) or not isinstance(y, (list, tuple)):
        return
    lengths = {len(row) for row in y if isinstance(row, (list, tuple, np.ndarray))}
    if len(lengths) > 1:
        raise ValueError("y looks like lists of label ids (rows of different lengths); turn "
                         "them into an indicator with sklearn.preprocessing."
                         "MultiLabelBinarizer(sparse_output=True)")


class _TopKScorer:
    """A scorer for ``scoring=``: ``scorer(estimator, X, y)`` is the mean
    P@k or nDCG@k of the estimator's top-k labels (see ``pyslide.metrics``)."""

    def __init__(self, metric, k):
        self.metric = metric
        self.k = k

    def __call__(self, estimator, X, y):
        model, X = _final_model(estimator, X)
        ids = model._topk_ids(X, self.k)
        truth = _true_labels(model, y)
        if ids.shape[0] != truth.shape[0]:
            raise ValueError(f"X has {ids.shape[0]} rows but y has {truth.shape[0]}")
        score = metrics.precision_at_k if self.metric == "p" else metrics.ndcg_at_k
        return score(ids, truth, self.k)

    def __repr__(self):
        name = "precision_at_k_scorer" if self.metric == "p" else "ndcg_at_k_scorer"
        return f"{name}(k={self.k})"


def _final_model(estimator, X):
    """The ``SlideClassifier`` that ranks, and ``X`` as it sees it: the
    estimator itself, or the last step of a ``Pipeline`` after the steps
    before it transformed ``X``."""
    if isinstance(estimator, SlideClassifier):
        return estimator, X
    steps = getattr(estimator, "steps", None)
    if steps and isinstance(steps[-1][1], SlideClassifier):
        for _, step in steps[:-1]:
            if step is not None and step != "passthrough":
                X = step.transform(X)
        return steps[-1][1], X
    raise TypeError(f"the P@k / nDCG@k scorers rank with a SlideClassifier, or a Pipeline "
                    f"whose last step is one; got {type(estimator).__name__}")


def precision_at_k_scorer(k=1):
    """A scorer computing precision at ``k`` of a fitted ``SlideClassifier``
    (or a ``Pipeline`` ending in one), for ``scoring=`` in ``GridSearchCV``,
    ``cross_val_score`` and the like (greater is better).

    Parameters
    ----------
    k : int
        The cut-off (labels ranked per row).

    Returns
    -------
    callable
        ``scorer(estimator, X, y)`` returning a float: the fraction of each
        row's top ``k`` labels that are true, averaged over rows.

    Examples
    --------
    >>> search = GridSearchCV(SlideClassifier(), {"lr": [1e-3, 3e-3]},
    ...                       scoring=precision_at_k_scorer(3))  # doctest: +SKIP
    """
    return _TopKScorer("p", integer(k, "k", 1))


def ndcg_at_k_scorer(k=5):
    """A scorer computing nDCG at ``k`` (as ``pyslide.metrics.ndcg_at_k``);
    used as :func:`precision_at_k_scorer` is.

    Parameters
    ----------
    k : int
        The cut-off.

    Returns
    -------
    callable
        ``scorer(estimator, X, y)`` returning a float in [0, 1].
    """
    return _TopKScorer("ndcg", integer(k, "k", 1))
