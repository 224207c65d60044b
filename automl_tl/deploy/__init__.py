"""After the search: export of the chosen trial, the exported model folder, predict and evaluate."""
