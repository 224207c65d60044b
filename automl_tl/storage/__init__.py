"""Where studies and their artifacts live: storage URLs, the per-trial artifact folders, and the S3 mirror."""
