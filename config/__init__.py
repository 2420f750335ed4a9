"""Configuration classes, chosen by the ``PORTAL_ENV`` environment variable."""

from config.settings import CONFIGS
from config.settings import BaseConfig
from config.settings import ConfigurationError
from config.settings import DevelopmentConfig
from config.settings import ProductionConfig
from config.settings import TestingConfig
from config.settings import config_for
from config.settings import production_problems
from config.settings import startup_problems

__all__ = [
    "CONFIGS",
    "BaseConfig",
    "ConfigurationError",
    "DevelopmentConfig",
    "ProductionConfig",
    "TestingConfig",
    "config_for",
    "production_problems",
    "startup_problems",
]
