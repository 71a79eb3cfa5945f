SECRET_KEY = "recipe"
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djapp.urls"
INSTALLED_APPS = ["djapp.apps.ManholeApp"]
DATABASES = {}
