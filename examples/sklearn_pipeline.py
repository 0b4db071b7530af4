"""A scikit-learn pipeline on Bibtex: TF-IDF weighting, SlideClassifier, GridSearchCV on P@3.

    pip install ".[sklearn]"                         # in the pyslide source folder
    python examples/sklearn_pipeline.py              # the bibtex files beside the repo
    python examples/sklearn_pipeline.py --threads 2

Bibtex (4,880 training and 2,515 test rows, 1,836 bag-of-words features,
159 tags) is read from ``../shared/data/bibtex`` relative to the repository,
or from ``$PYSLIDE_DATA_DIR/bibtex``; without it the script says so and
exits. ``TfidfTransformer`` turns the word counts into TF-IDF weights,
``pyslide.sklearn.SlideClassifier`` learns the tags, and ``GridSearchCV``
picks one of two learning rates by 3-fold cross-validated P@3 on the
training rows; the best pipeline, refitted on every training row, is then
scored on the test rows. Set ``PYSLIDE_EXAMPLE_QUICK=1`` for a smoke run
on the first 500 rows.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

import pyslide as ps
from pyslide.sklearn import SlideClassifier, precision_at_k_scorer

DATA = Path(os.environ.get("PYSLIDE_DATA_DIR",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
QUICK = os.environ.get("PYSLIDE_EXAMPLE_QUICK") == "1"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--threads", type=int, default=None)
args = parser.parse_args()

train_file, test_file = DATA / "bibtex" / "train.txt", DATA / "bibtex" / "test.txt"
if not (train_file.exists() and test_file.exists()):
    print(f"Bibtex not found in {DATA / 'bibtex'} (train.txt, test.txt); set "
          f"PYSLIDE_DATA_DIR to the folder holding bibtex/")
    sys.exit(0)

X, Y = ps.data.load_xc(train_file)
X_test, Y_test = ps.data.load_xc(test_file, n_features=X.shape[1], n_labels=Y.shape[1])
if QUICK:
    X, Y, X_test, Y_test = X[:500], Y[:500], X_test[:200], Y_test[:200]
print(f"bibtex: {X.shape[0]} training rows, {X_test.shape[0]} test rows, "
      f"{X.shape[1]} features, {Y.shape[1]} labels")

# Early stopping holds out 10% of each training fold and keeps the epoch
# with the best loss on it: the test rows play no part in any choice.
pipeline = make_pipeline(
    TfidfTransformer(),
    SlideClassifier(hidden_layer_sizes=(128,), epochs=2 if QUICK else 30,
                    validation_split=0.1, early_stopping=True, patience=2,
                    threads=args.threads, random_state=0))
search = GridSearchCV(pipeline, {"slideclassifier__lr": [1e-3, 3e-3]},
                      scoring=precision_at_k_scorer(3),
                      cv=KFold(2 if QUICK else 3, shuffle=True, random_state=0))
start = time.perf_counter()
search.fit(X, Y)
print(f"grid search: {len(search.cv_results_['params'])} settings x {search.n_splits_} folds "
      f"+ refit in {time.perf_counter() - start:.1f} s")
for params, mean, std in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                             search.cv_results_["std_test_score"]):
    print(f"  lr {params['slideclassifier__lr']:g}: cross-validated P@3 {mean:.4f} "
          f"(+/- {std:.4f})")
best = search.best_estimator_
classifier = best.named_steps["slideclassifier"]
print(f"best: lr {search.best_params_['slideclassifier__lr']:g}, refitted on every training "
      f"row, kept epoch {classifier.best_epoch_} of {len(classifier.history_['loss'])}")

# The pipeline's last step ranks; the steps before it weight the test rows.
labels, _ = classifier.predict_topk(best[:-1].transform(X_test), k=5)
scores = ps.metrics.evaluate_topk(labels, Y_test, ks=(1, 3, 5))
print("test: " + "  ".join(f"P@{k} {scores[f'p@{k}']:.4f}" for k in (1, 3, 5)))
