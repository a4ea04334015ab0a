"""training_file: the files every backend trains on, split, versioned, and gated before money is spent.

Pure modules only (`build`, `rows`, `formats`, `format_rules`, `split`, `tokens`, `validate`, `version`,
`memo`, `check_memo`, `memo_file`, `dataset_card`, `hub`); the Dagster asset and its checks are in
`pipeline/defs/training_file*.py`.
"""
