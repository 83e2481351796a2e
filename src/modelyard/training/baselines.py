"""Non-neural references fitted on exactly the same splits, so the models' figures are honest.

Each takes the task's DataModule, fits on the train split and returns its test metrics
(`test_<metric>`); an experiment names the ones it is measured against (`baseline:`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.svm import LinearSVC

if TYPE_CHECKING:  # hints only: a task's pipeline stages depend on the data code it runs
    from modelyard.data.base import SplitDataModule
    from modelyard.data.reviews import ReviewsDataModule
    from modelyard.data.table import TableDataModule


def majority_class(datamodule: SplitDataModule) -> dict[str, float]:
    """Always the train split's most frequent class: what accuracy means nothing below."""
    _, train_labels = datamodule.raw_split("train")
    _, test_labels = datamodule.raw_split("test")
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
    predicted = np.full(len(test_labels), int(counts.argmax()))
    return {"test_acc": float(accuracy_score(test_labels, predicted))}


def logistic_regression(datamodule: TableDataModule) -> dict[str, float]:
    """Multinomial logistic regression on the standardised feature columns (train-split
    statistics, as the models standardise them)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = datamodule.arrays("train")
    x_test, y_test = datamodule.arrays("test")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    classifier.fit(x_train.astype(np.float64), y_train)
    predicted = classifier.predict(x_test.astype(np.float64))
    return {"test_acc": float(accuracy_score(y_test, predicted)),
            "test_f1": float(f1_score(y_test, predicted, average="macro"))}


def least_squares(datamodule: TableDataModule) -> dict[str, float]:
    """Closed-form ordinary least squares (with intercept) on the train split."""
    x_train, y_train = datamodule.arrays("train")
    x_test, y_test = datamodule.arrays("test")
    design = lambda x: np.column_stack([x.astype(np.float64), np.ones(len(x))])  # noqa: E731
    coef, *_ = np.linalg.lstsq(design(x_train), y_train.astype(np.float64), rcond=None)
    residual = y_test - design(x_test) @ coef
    return {
        "test_mse": float(np.mean(residual**2)),
        "test_mae": float(np.mean(np.abs(residual))),
        "test_r2": float(1 - np.sum(residual**2) / np.sum((y_test - y_test.mean()) ** 2)),
    }


def binary_scores(labels: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (score >= threshold).astype(int)
    return {
        "test_acc": float(accuracy_score(labels, predicted)),
        "test_f1": float(f1_score(labels, predicted)),
        "test_auroc": float(roc_auc_score(labels, score)),
    }


def tfidf_logistic_regression(datamodule: ReviewsDataModule) -> dict[str, float]:
    """TF-IDF of word uni- and bigrams + logistic regression."""
    train_texts, train_labels = datamodule.texts_and_labels("train")
    test_texts, test_labels = datamodule.texts_and_labels("test")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=4.0, max_iter=2000)
    classifier.fit(vectorizer.fit_transform(train_texts), train_labels)
    probability = classifier.predict_proba(vectorizer.transform(test_texts))[:, 1]
    return binary_scores(test_labels, probability, 0.5)


def log_count_ratio(features: sparse.csr_matrix, labels: np.ndarray, alpha: float) -> np.ndarray:
    """r = log((p / |p|_1) / (q / |q|_1)), p and q the alpha-smoothed feature counts over the
    positive and the negative texts."""
    positive = alpha + np.asarray(features[labels == 1].sum(axis=0)).ravel()
    negative = alpha + np.asarray(features[labels == 0].sum(axis=0)).ravel()
    return np.log((positive / positive.sum()) / (negative / negative.sum()))


def nbsvm(datamodule: ReviewsDataModule, C: float = 1.0, beta: float = 0.25,  # noqa: N803
          alpha: float = 1.0) -> dict[str, float]:
    """NBSVM (Wang & Manning, 2012): binarised word uni- and bigrams scaled by their Naive
    Bayes log-count ratios r, a linear SVM on them, and its weights interpolated towards
    their mean magnitude, w' = (1 - beta) * mean|w| + beta * w: a mix of Naive Bayes (the
    constant part scores r . x) and the SVM. The paper's settings are the defaults.

    The paper leaves the bias alone; these classes are unbalanced (58% positive), so the
    Naive Bayes part brings its own bias, the class prior log-ratio, in the same mix."""
    train_texts, train_labels = datamodule.texts_and_labels("train")
    test_texts, test_labels = datamodule.texts_and_labels("test")
    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True)
    train_features = vectorizer.fit_transform(train_texts)
    ratio = log_count_ratio(train_features, train_labels, alpha)
    svm = LinearSVC(C=C, max_iter=10_000, random_state=0)  # squared hinge, as liblinear's
    svm.fit(train_features.multiply(ratio).tocsr(), train_labels)
    weights, bias = svm.coef_.ravel(), float(svm.intercept_[0])
    mean_magnitude = float(np.abs(weights).mean())
    prior = float(np.log(train_labels.mean() / (1 - train_labels.mean())))
    weights = (1 - beta) * mean_magnitude + beta * weights
    bias = (1 - beta) * mean_magnitude * prior + beta * bias
    score = vectorizer.transform(test_texts).multiply(ratio).tocsr() @ weights + bias
    return binary_scores(test_labels, np.asarray(score).ravel(), 0.0)
