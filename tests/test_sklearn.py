"""pyslide.sklearn: scikit-learn's estimator checks, clone, Pipeline, GridSearchCV, scorers."""
import inspect
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed: the "
                              "pyslide.sklearn tests need pip install -e '.[sklearn]'")

from sklearn.base import clone                                         # noqa: E402
from sklearn.exceptions import NotFittedError                          # noqa: E402
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline                   # noqa: E402
from sklearn.preprocessing import MultiLabelBinarizer                  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks     # noqa: E402

import pyslide as ps                                                   # noqa: E402
from pyslide.metrics import ndcg_at_k, precision_at_k                  # noqa: E402
from pyslide.sklearn import (SlideClassifier, ndcg_at_k_scorer,        # noqa: E402
                             precision_at_k_scorer)


def small_clf(**params):
    """A network small and fast enough for scikit-learn's checks, which fit
    dozens of times on a few hundred rows: one thread (reproducible), a
    large step so that a few epochs learn the checks' blobs."""
    defaults = dict(hidden_layer_sizes=(16,), epochs=10, batch_size=8, lr=0.01, threads=1)
    return SlideClassifier(**{**defaults, **params})


# The checks scikit-learn's tags leave out, and why:
# - check_classifier_multioutput: targets of several multi-class columns
#   ("multiclass-multioutput"); y is a 0/1 indicator or one class per row,
#   so the multi_output tag stays False;
# - the sample_weight checks: fit takes no sample_weight (the network's
#   loss has no per-row weights);
# - the partial_fit checks: no partial_fit.
# Every check that runs passes, so no check is expected to fail; with
# threads != 1 the estimator says it is non-deterministic (HogWild) and
# scikit-learn skips its reproducibility checks, hence threads=1 here. The
# pandas checks skip where pandas is not installed.
EXPECTED_FAILED_CHECKS = {}
_check_options = {}
if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    _check_options["expected_failed_checks"] = lambda estimator: EXPECTED_FAILED_CHECKS


@parametrize_with_checks([small_clf(),                                 # exact softmax
                          small_clf(loss="bce"),                       # sigmoids
                          small_clf(share="sample", active=2)],        # LSH-sampled output
                         **_check_options)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- data

@pytest.fixture(scope="module")
def xc():
    """A small multi-label problem: 600 training and 200 test rows, 400
    features, 40 labels (sparse CSR X and Y)."""
    return ps.data.make_xc("small", n_samples=600, n_test=200, n_features=400, n_labels=40,
                           n_groups=8, seed=0)


def popularity_p1(Y, Yt):
    top = int(np.asarray(Y.sum(axis=0)).ravel().argmax())
    return float(Yt[:, top].mean())


def as_documents(X):
    """Each row as a text whose words are its feature ids (for TfidfVectorizer)."""
    return [" ".join(f"w{j}" for j in X.indices[X.indptr[i]:X.indptr[i + 1]])
            for i in range(X.shape[0])]


# ---------------------------------------------------------------- parameters

def test_parameters_are_stored_as_given_and_clone_keeps_them():
    hidden = [64, 32]                      # a list stays the same list object
    family = ps.SimHash(K=4, L=3, seed=1)
    clf = SlideClassifier(hidden_layer_sizes=hidden, hash=family, lr=3e-3, epochs=7)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] is hidden and params["hash"] is family
    assert params["lr"] == 3e-3 and params["epochs"] == 7 and params["optimizer"] == "adam"
    assert set(params) == set(inspect.signature(SlideClassifier).parameters)
    copy = clone(clf)
    assert copy.get_params()["hidden_layer_sizes"] == hidden
    assert copy.get_params()["hash"].get_config() == family.get_config()
    assert clf.set_params(epochs=3, top_k=2) is clf and clf.epochs == 3 and clf.top_k == 2
    # nothing is checked or built before fit: a bad value waits for fit
    SlideClassifier(hidden_layer_sizes="abc", epochs=-1)


def test_nested_parameters_through_a_pipeline():
    pipe = Pipeline([("tfidf", TfidfTransformer()), ("clf", SlideClassifier(lr=1e-3))])
    assert pipe.get_params()["clf__lr"] == 1e-3
    pipe.set_params(clf__lr=5e-3, clf__hidden_layer_sizes=(8,), tfidf__sublinear_tf=True)
    assert pipe.named_steps["clf"].lr == 5e-3
    assert pipe.named_steps["clf"].hidden_layer_sizes == (8,)
    copy = clone(pipe)
    assert copy.get_params()["clf__lr"] == 5e-3
    assert copy.named_steps["clf"] is not pipe.named_steps["clf"]


# ---------------------------------------------------------------- fit / predict

def test_learns_a_multilabel_problem_with_sparse_X_and_Y(xc):
    X, Y, Xt, Yt = xc
    clf = SlideClassifier(hidden_layer_sizes=(32,), epochs=5, lr=1e-2, batch_size=64,
                          threads=1).fit(X, Y)
    assert clf.multilabel_ and clf.n_features_in_ == 400
    np.testing.assert_array_equal(clf.classes_, np.arange(40))
    assert isinstance(clf.network_, ps.Network) and clf.network_.epoch_ == 5
    assert len(clf.history_["loss"]) == 5
    assert clf.score(Xt, Yt) > 2 * popularity_p1(Y, Yt)


def test_dense_and_sparse_inputs_train_the_same_network(xc):
    X, Y, Xt, _ = xc
    X, Y = X[:200], Y[:200]
    params = dict(hidden_layer_sizes=(16,), epochs=2, lr=1e-2, batch_size=32, threads=1)
    sparse_fit = SlideClassifier(**params).fit(X, Y)
    dense_fit = SlideClassifier(**params).fit(X.toarray(), Y.toarray().astype(np.int64))
    for a, b in zip(sparse_fit.network_.get_weights(), dense_fit.network_.get_weights()):
        np.testing.assert_array_equal(a["W"], b["W"])
    # each answers predict in the representation it was given
    sparse_pred, dense_pred = sparse_fit.predict(Xt), dense_fit.predict(Xt.toarray())
    assert sp.issparse(sparse_pred) and isinstance(dense_pred, np.ndarray)
    assert dense_pred.dtype == np.int64
    np.testing.assert_array_equal(sparse_pred.toarray(), dense_pred)


def test_predict_marks_each_rows_top_k(xc):
    X, Y, Xt, _ = xc
    clf = small_clf(top_k=3).fit(X, Y)
    pred = clf.predict(Xt)
    assert sp.issparse(pred) and pred.shape == (200, 40)
    np.testing.assert_array_equal(np.diff(pred.indptr), 3)
    labels, scores = clf.predict_topk(Xt)
    assert labels.shape == scores.shape == (200, 3)
    np.testing.assert_array_equal(np.sort(labels, axis=1), pred.indices.reshape(200, 3))
    assert np.all(np.diff(scores, axis=1) <= 0)               # best first
    labels5, _ = clf.predict_topk(Xt, k=5)
    np.testing.assert_array_equal(labels5[:, :3], labels)


def test_decision_function_and_predict_proba_match_the_network(xc):
    X, Y, Xt, _ = xc
    clf = small_clf().fit(X, Y)
    logits = clf.decision_function(Xt)
    assert logits.shape == (200, 40) and logits.dtype == np.float32
    proba = clf.predict_proba(Xt)
    np.testing.assert_allclose(proba, clf.network_.predict_proba(Xt), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels, scores = clf.predict_topk(Xt, k=4)
    np.testing.assert_array_equal(np.take_along_axis(logits, labels, axis=1), scores)


def test_dense_results_are_refused_beyond_max_dense_bytes(xc):
    X, Y, Xt, _ = xc
    clf = small_clf(max_dense_bytes=200 * 40 * 4).fit(X, Y)
    assert clf.decision_function(Xt).shape == (200, 40)        # exactly at the limit
    with pytest.raises(MemoryError, match=r"predict_proba: a dense 200 x 40 result takes "
                                          r"64,000 bytes, above max_dense_bytes=32,000; "
                                          r"use predict_topk"):
        clf.predict_proba(Xt)
    clf.set_params(max_dense_bytes=1000)
    with pytest.raises(MemoryError, match="decision_function: a dense 200 x 40"):
        clf.decision_function(Xt)
    assert sp.issparse(clf.predict(Xt))        # a sparse y: predict stays sparse
    assert clf.predict_topk(Xt, k=2)[0].shape == (200, 2)
    dense = small_clf(max_dense_bytes=1000).fit(X, Y.toarray())
    with pytest.raises(MemoryError, match="predict: a dense 200 x 40"):
        dense.predict(Xt)


def test_multiclass_y_of_any_labels(xc):
    X, Y, Xt, Yt = xc
    names = np.array(["ant", "bee", "cat", "dog", "eel"])
    first = lambda M: np.asarray(M[:, :5].argmax(axis=1)).ravel()   # noqa: E731
    y, yt = names[first(Y)], names[first(Yt)]
    clf = small_clf(epochs=3).fit(X, y)
    assert not clf.multilabel_
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    pred = clf.predict(Xt)
    assert pred.shape == (200,) and set(pred) <= set(names)
    assert clf.score(Xt, yt) == pytest.approx(np.mean(pred == yt))
    proba = clf.predict_proba(Xt)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    labels, _ = clf.predict_topk(Xt, k=2)
    np.testing.assert_array_equal(labels[:, 0], pred)
    assert clf.predict_topk(Xt)[0].shape == (200, 5)      # top_k=5 = the number of classes
    # two classes: decision_function is the log-odds of classes_[1]
    binary = small_clf().fit(X, y == "ant")
    decision = binary.decision_function(Xt)
    assert decision.shape == (200,)
    assert binary.predict_topk(Xt)[0].shape == (200, 2)    # top_k=5 > 2 classes: both
    np.testing.assert_array_equal(binary.classes_[(decision > 0).astype(int)],
                                  binary.predict(Xt))
    proba = binary.predict_proba(Xt)
    np.testing.assert_allclose(np.log(proba[:, 1] / proba[:, 0]), decision, rtol=1e-6,
                               atol=1e-9)


def test_multilabelbinarizer_round_trip(xc):
    X, Y, Xt, _ = xc
    tag_names = np.array([f"tag{j:02d}" for j in range(Y.shape[1])])
    tags = [list(tag_names[Y.indices[Y.indptr[i]:Y.indptr[i + 1]]]) for i in range(Y.shape[0])]
    mlb = MultiLabelBinarizer(sparse_output=True)
    Y_mlb = mlb.fit_transform(tags)
    clf = small_clf(top_k=2).fit(X, Y_mlb)
    predicted = mlb.inverse_transform(clf.predict(Xt))
    labels, _ = clf.predict_topk(Xt, k=2)
    assert len(predicted) == 200
    for row, names in zip(labels, predicted):
        assert set(names) == set(mlb.classes_[row]) and len(names) == 2


def test_pk_equals_the_plain_networks_on_the_same_seed(xc):
    X, Y, Xt, Yt = xc
    clf = SlideClassifier(hidden_layer_sizes=(32,), epochs=3, lr=5e-3, batch_size=64,
                          threads=1, random_state=4).fit(X, Y)
    net = ps.Network(X.shape[1], [ps.Dense(32), ps.Sampled(Y.shape[1])],
                     optimizer=ps.Adam(lr=5e-3), threads=1, seed=4)
    net.fit(X, Y, epochs=3, batch_size=64, verbose=0)
    ids, scores = net.predict_topk(Xt, k=5)
    labels, clf_scores = clf.predict_topk(Xt, k=5)
    np.testing.assert_array_equal(labels, ids)
    np.testing.assert_array_equal(clf_scores, scores)
    for k in (1, 3, 5):
        assert precision_at_k_scorer(k)(clf, Xt, Yt) == precision_at_k(ids, Yt, k)
        assert ndcg_at_k_scorer(k)(clf, Xt, Yt) == ndcg_at_k(ids, Yt, k)
    assert clf.score(Xt, Yt) == net.evaluate(Xt, Yt)["p@1"]


def test_validation_split_and_early_stopping(xc):
    X, Y, _, _ = xc
    clf = small_clf(epochs=30, validation_split=0.2, early_stopping=True, patience=1,
                    batch_size=64).fit(X, Y)
    assert len(clf.history_["val_loss"]) == clf.network_.epoch_ < 30
    best = int(np.argmin(clf.history_["val_loss"])) + 1
    assert clf.best_epoch_ == best
    assert len(clf.network_.validation_rows_) == 120
    clf.set_params(early_stopping=False, epochs=1).fit(X, Y)
    assert not hasattr(clf, "best_epoch_")          # nothing left of the earlier fit
    assert len(clf.history_["val_loss"]) == 1


# ---------------------------------------------------------------- scikit-learn tools

def test_pipeline_with_tfidf_transformer(xc):
    X, Y, Xt, Yt = xc
    counts, counts_test = X.ceil(), Xt.ceil()       # a bag of words: counts
    pipe = make_pipeline(TfidfTransformer(), small_clf(batch_size=64, epochs=5))
    pipe.fit(counts, Y)
    assert pipe.score(counts_test, Yt) > 2 * popularity_p1(Y, Yt)
    assert sp.issparse(pipe.predict(counts_test))


def test_pipeline_with_tfidf_vectorizer_on_text(xc):
    X, Y, Xt, Yt = xc
    pipe = make_pipeline(TfidfVectorizer(), small_clf(batch_size=64, epochs=5))
    pipe.fit(as_documents(X), Y)
    assert pipe.score(as_documents(Xt), Yt) > 2 * popularity_p1(Y, Yt)
    # the scorers rank with the pipeline's last step on the transformed text
    p3 = precision_at_k_scorer(3)(pipe, as_documents(Xt), Yt)
    ids, _ = pipe[-1].predict_topk(pipe[:-1].transform(as_documents(Xt)), k=3)
    assert p3 == precision_at_k(ids, Yt, 3)


def test_grid_search_over_two_values_with_the_pk_scorer(xc):
    X, Y, Xt, Yt = xc
    search = GridSearchCV(make_pipeline(TfidfTransformer(), small_clf(batch_size=64)),
                          {"slideclassifier__hidden_layer_sizes": [(4,), (32,)]},
                          scoring=precision_at_k_scorer(3), cv=KFold(2))
    search.fit(X, Y)
    results = search.cv_results_
    assert len(results["params"]) == 2
    for i in range(2):
        splits = [results[f"split{s}_test_score"][i] for s in range(2)]
        assert 0 < min(splits) and max(splits) < 1
        assert results["mean_test_score"][i] == pytest.approx(np.mean(splits))
    assert search.best_params_ == results["params"][int(np.argmax(results["mean_test_score"]))]
    # scoring a held-out set with the refitted best pipeline
    best = search.best_estimator_
    ids, _ = best[-1].predict_topk(best[:-1].transform(Xt), k=3)
    assert search.score(Xt, Yt) == precision_at_k(ids, Yt, 3)


def test_grid_search_in_worker_processes_matches_one_process(xc):
    """n_jobs=2 pickles the estimator and the scorer into joblib's workers."""
    X, Y, _, _ = xc
    results = [GridSearchCV(small_clf(batch_size=64, epochs=3), {"lr": [1e-3, 1e-2]},
                            scoring=precision_at_k_scorer(3), cv=KFold(2), n_jobs=n_jobs,
                            refit=False).fit(X, Y).cv_results_["mean_test_score"]
               for n_jobs in (1, 2)]
    np.testing.assert_array_equal(results[0], results[1])


def test_cross_val_score(xc):
    X, Y, _, _ = xc
    # scikit-learn's cross_val_score takes a dense y only (from 1.5 at least,
    # its own argument check refuses a sparse matrix, whatever the
    # estimator); GridSearchCV takes a sparse one (above)
    Y_dense = Y.toarray().astype(np.int8)
    scores = cross_val_score(small_clf(batch_size=64), X, Y_dense, cv=KFold(3))
    assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))
    clf = small_clf(batch_size=64).fit(X[200:], Y[200:])       # KFold's first split
    assert scores[0] == clf.score(X[:200], Y[:200])
    ndcg = cross_val_score(small_clf(batch_size=64), X, Y_dense, cv=KFold(3),
                           scoring=ndcg_at_k_scorer(5))
    assert np.all((ndcg > 0) & (ndcg < 1))
    assert ndcg[0] == ndcg_at_k(clf.predict_topk(X[:200])[0], Y[:200], 5)


# ---------------------------------------------------------------- pickle, clone, tags

def test_a_fitted_estimator_pickles_and_clones(xc):
    X, Y, Xt, _ = xc
    clf = small_clf().fit(X, Y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_topk(Xt)[1], clf.predict_topk(Xt)[1])
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    assert restored.history_ == clf.history_
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        fresh.predict(Xt)
    fresh.fit(X, Y)                    # one thread: the same seed, the same network
    np.testing.assert_array_equal(fresh.predict_topk(Xt)[1], clf.predict_topk(Xt)[1])


def test_tags_declare_multilabel_and_sparse_input():
    clf = SlideClassifier()
    if hasattr(clf, "__sklearn_tags__") and hasattr(sklearn.utils, "get_tags"):
        tags = sklearn.utils.get_tags(clf)
        assert tags.input_tags.sparse and tags.classifier_tags.multi_label
        assert tags.estimator_type == "classifier"
        assert tags.non_deterministic and not sklearn.utils.get_tags(
            clf.set_params(threads=1)).non_deterministic
    legacy = SlideClassifier(threads=1)._more_tags()
    assert legacy["multilabel"] and "sparse" in legacy["X_types"]
    assert not legacy["non_deterministic"]


def test_pyslide_imports_without_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import pyslide\n"
            "try:\n    import pyslide.sklearn\n"
            "except ImportError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert ('pyslide.sklearn needs scikit-learn: pip install ".[sklearn]" in '
            "pyslide's source folder") in out


# ---------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    X = rng.random((20, 6))
    y = np.arange(20) % 3
    return X, y


@pytest.mark.parametrize("params, error, message", [
    (dict(hidden_layer_sizes="abc"), TypeError,
     "hidden_layer_sizes must be an int or a sequence of ints, got 'abc'"),
    (dict(hidden_layer_sizes=(8, 0)), ValueError, "hidden_layer_sizes values must be >= 1"),
    (dict(hidden_layer_sizes=()), ValueError,
     "hidden_layer_sizes is empty, but the output's share='batch' needs a hidden layer"),
    (dict(optimizer="rmsprop"), ValueError,
     "optimizer must be 'adam', 'adamw' or 'sgd', got 'rmsprop'"),
    (dict(optimizer=ps.Adam(lr=1e-2), lr=1e-3), ValueError,
     "lr and weight_decay apply to an optimizer given by name"),
    (dict(optimizer=42), TypeError, "optimizer must be 'adam', 'sgd', pyslide.Adam"),
    (dict(lr=-1.0), ValueError, "Adam: lr must be > 0"),
    (dict(random_state=-1), ValueError, "random_state must be >= 0, got -1"),
    (dict(random_state="seed"), TypeError,
     "random_state must be an int >= 0, a numpy RandomState or None, got 'seed'"),
    (dict(early_stopping=1), TypeError, "early_stopping must be True or False, got 1"),
    (dict(early_stopping=True), ValueError,
     "early_stopping=True watches held-out rows: set validation_split > 0"),
    (dict(epochs=0), ValueError, "epochs must be >= 1"),
    (dict(validation_split=1.5), ValueError, "validation_split must be in"),
    (dict(active=0), ValueError, "Sampled: active must be a fraction in"),
    (dict(loss="hinge"), ValueError, "loss must be 'softmax' or 'bce', got 'hinge'"),
    (dict(threads=0), ValueError, "threads"),
])
def test_bad_parameters_are_named_at_fit(tiny, params, error, message):
    X, y = tiny
    with pytest.raises(error, match=_escaped(message)):
        SlideClassifier(**{"threads": 1, **params}).fit(X, y)


def _escaped(message):
    import re
    return re.escape(message)


@pytest.mark.parametrize("y, message", [
    ([[0, 3], [1], [2, 4, 5]] * 2 + [[1]] * 14,
     "y looks like lists of label ids (rows of different lengths); turn them into an "
     "indicator with sklearn.preprocessing.MultiLabelBinarizer(sparse_output=True)"),
    (np.tile([[0, 2], [1, 3]], (10, 1)),
     "y: a 2-D y must be a 0/1 label indicator (multi-label), got 'multiclass-multioutput' "
     "values; turn lists of labels into an indicator with"),
    (np.linspace(0, 1, 20), "Unknown label type"),
    (np.zeros(20, dtype=int), "y holds one class only (0); a classifier needs at least 2"),
    (np.arange(19) % 2, "inconsistent numbers of samples"),
])
def test_bad_targets_are_refused_with_their_reason(tiny, y, message):
    X, _ = tiny
    with pytest.raises(ValueError, match=_escaped(message)):
        small_clf().fit(X, y)


def test_bad_prediction_arguments(tiny):
    X, y = tiny
    clf = small_clf(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=_escaped("k=4 but the model has 3 labels")):
        clf.predict_topk(X, k=4)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        clf.predict_topk(X, k=0)
    with pytest.raises(ValueError, match="X has 5 features, but SlideClassifier is expecting 6"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="max_dense_bytes must be >= 1, got 0"):
        clf.set_params(max_dense_bytes=0).predict_proba(X)
    multilabel = small_clf(epochs=1).fit(X, np.eye(3, dtype=int)[y])
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        multilabel.set_params(top_k=0).predict(X)
    with pytest.raises(ValueError, match=_escaped("y must be a label indicator with the 3 "
                                                  "columns the model was fitted on, got "
                                                  "shape (20, 4)")):
        multilabel.score(X, np.zeros((20, 4)))
    with pytest.raises(ValueError, match=_escaped("X has 20 rows but y has 10")):
        precision_at_k_scorer(1)(multilabel, X, np.eye(3, dtype=int)[y[:10]])
    with pytest.raises(NotFittedError):
        SlideClassifier().predict_topk(X)


def test_bad_scorer_arguments(tiny):
    X, y = tiny
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        precision_at_k_scorer(0)
    with pytest.raises(TypeError, match="k must be an int"):
        ndcg_at_k_scorer(2.5)
    from sklearn.dummy import DummyClassifier
    other = DummyClassifier().fit(X, y)
    with pytest.raises(TypeError, match="the P@k / nDCG@k scorers rank with a SlideClassifier, "
                                        "or a Pipeline whose last step is one; got "
                                        "DummyClassifier"):
        precision_at_k_scorer(1)(other, X, y)
    assert repr(precision_at_k_scorer(3)) == "precision_at_k_scorer(k=3)"
    assert repr(ndcg_at_k_scorer(5)) == "ndcg_at_k_scorer(k=5)"


def test_a_class_unseen_in_fit_scores_as_a_miss(tiny):
    X, y = tiny
    clf = small_clf(epochs=1).fit(X, y)
    pred = clf.predict(X)
    unseen = np.where(np.arange(20) < 5, 9, pred)      # 9 is no class of the model
    assert clf.score(X, unseen) == pytest.approx(15 / 20)
    assert clf.score(X, np.array(["a"] * 20, dtype=object)) == 0.0
