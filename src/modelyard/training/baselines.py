"""Non-neural references fitted on exactly the same splits, so the models' figures are honest."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from modelyard.data.market import MarketDataModule
from modelyard.data.reviews import ReviewsDataModule


def least_squares(datamodule: MarketDataModule) -> dict[str, float]:
    """Closed-form ordinary least squares (with intercept) on the train split."""
    x_train, y_train = datamodule.arrays("train")
    x_test, y_test = datamodule.arrays("test")
    design = lambda x: np.column_stack([x.astype(np.float64), np.ones(len(x))])  # noqa: E731
    coef, *_ = np.linalg.lstsq(design(x_train), y_train.astype(np.float64), rcond=None)
    residual = y_test - design(x_test) @ coef
    return {
        "baseline_test_mse": float(np.mean(residual**2)),
        "baseline_test_mae": float(np.mean(np.abs(residual))),
        "baseline_test_r2": float(1 - np.sum(residual**2) / np.sum((y_test - y_test.mean()) ** 2)),
    }


def tfidf_logistic_regression(datamodule: ReviewsDataModule) -> dict[str, float]:
    """TF-IDF of word uni- and bigrams + logistic regression."""
    train_texts, train_labels = datamodule.texts_and_labels("train")
    test_texts, test_labels = datamodule.texts_and_labels("test")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=4.0, max_iter=2000)
    classifier.fit(vectorizer.fit_transform(train_texts), train_labels)
    probability = classifier.predict_proba(vectorizer.transform(test_texts))[:, 1]
    predicted = (probability >= 0.5).astype(int)
    return {
        "baseline_test_acc": float(accuracy_score(test_labels, predicted)),
        "baseline_test_f1": float(f1_score(test_labels, predicted)),
        "baseline_test_auroc": float(roc_auc_score(test_labels, probability)),
    }
