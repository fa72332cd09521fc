"""Values that the Pulumi program, the images and the tests must agree on, defined once."""

# The war has this path compiled in; Prevayler writes its journals to `files*` below it.
DATA_PATH = "/Users/dcameron/persistence"
# The single-writer lock lives in the data folder itself, so every process that could open the journals
# contends for the same lock, wherever it runs (one Docker host, or EFS across instances).
WRITER_LOCK_FILE = ".writer.lock"

# Every image listens on an unprivileged port so that all capabilities can be dropped.
STATIC_PORT = 8080
APP_PORT = 8080
PROXY_PORT = 8080
PROXY_STATS_PORT = 8404

# Fixed numeric ids: the EFS access point must name the same uid/gid the app image runs as.
APP_UID = 10001
APP_GID = 10001
STATIC_UID = 10002
PROXY_UID = 10003

# Network aliases each replica of a tier carries, for people and tools on the stack's network (docker exec,
# curl http://app:8080). The proxy itself addresses replicas by their fixed IPs (components/docker_host.py).
STATIC_ALIAS = "static"
APP_ALIAS = "app"

# Paths the proxy routes to the static tier; everything else goes to the app tier.
STATIC_PATH_PREFIXES = ("/styles/", "/images/")

# What the load balancer asks each tier on AWS; the images' own healthchecks ask the same paths.
STATIC_HEALTH_PATH = "/healthz"     # docker/static/nginx.conf answers it
APP_HEALTH_PATH = "/"               # companyNews' front page, 200 once Jetty has deployed the war

# The most app replicas a training stack may run (appReplicas); scale-down stops the ones above the new count.
MAX_APP_REPLICAS = 5

LABEL_STACK = "companynews.stack"
LABEL_ROLE = "companynews.role"
ROLES = ("static", "app", "proxy")

DEFAULT_WAR_URL = "https://s3.amazonaws.com/infra-assessment/companyNews.war"
DEFAULT_STATIC_URL = "https://s3.amazonaws.com/infra-assessment/static.zip"
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"
