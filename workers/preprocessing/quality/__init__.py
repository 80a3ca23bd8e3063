"""Data-quality assessment: metrics, scores, recommendations, the report."""
