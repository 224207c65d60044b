"""Activation caches: frozen-prefix features computed once per backbone and cut, kept on disk or in memory."""
