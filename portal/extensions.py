"""One instance of each extension, bound to an app only in ``create_app``."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_principal import Principal
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from portal.database import Base

db = SQLAlchemy(model_class=Base)
babel = Babel()
migrate = Migrate()
login_manager = LoginManager()
# Identities are derived from the logged-in user on each request, not stored.
principal = Principal(use_sessions=False, skip_static=True)
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
