"""Configuration: the typed schema of `hermes.toml` and its loader."""

from appliance.config.loader import DEFAULT_CONFIG_PATH, env_var_for, load_config, parse_config
from appliance.config.schema import Config, Tier, TierLimits

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "Tier",
    "TierLimits",
    "env_var_for",
    "load_config",
    "parse_config",
]
