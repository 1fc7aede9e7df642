"""Response tables: record a Receiver once, then train and evaluate at memory speed."""

from persuasion_gym.tables.record import record
from persuasion_gym.tables.rescore import Rescored, rescore
from persuasion_gym.tables.table import FORMAT, ResponseTable, load_table
from persuasion_gym.tables.values import baseline_values, no_signal_value, policy_value

__all__ = ["FORMAT", "Rescored", "ResponseTable", "baseline_values", "load_table", "no_signal_value", "policy_value",
           "record", "rescore"]
