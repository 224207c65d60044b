"""The data audit: what is wrong with a data set before a search trains on it, and which labels a
cross-validated search doubts after it.

``run_audit`` (``audit.run``) finds exact and near-duplicates (within a class, across classes, across the
splits: leaks), images far smaller than the chosen size, extreme aspect ratios, unreadable files and class
imbalance; ``label_issues`` (``audit.labels``) ranks likely label errors from out-of-fold probabilities.
The result is one ``AuditReport`` (``audit.report``), kept on the study as a bounded dict.
"""
