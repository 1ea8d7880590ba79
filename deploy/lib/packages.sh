# shellcheck shell=bash
# What the scripts need installed (eie_pkg_*): the Debian packages, and the
# Swagger UI assets that eie-api serves, fetched with npm. Kafka's jars are
# kafka.sh's (kafka_fetch).

EIE_APT_PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev libulfius-dev libjansson-dev libpq-dev libcmocka-dev libsodium-dev
  libgnutls28-dev openssl
  clang libfuzzer-14-dev libclang-rt-14-dev
  openjdk-17-jre-headless maven
  curl jq kcat python3 python3-venv bc time ca-certificates procps npm
  prometheus
)

# Prints the names among "$@" that dpkg does not report as installed.
eie_pkg__missing() {
  local installed
  installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
    awk '$2 == "installed" { printf "%s ", $1 }' || true) "
  local p
  for p in "$@"; do
    [[ $installed == *" $p "* ]] && continue
    # NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
    [[ $p == npm ]] && command -v npm >/dev/null && continue
    printf '%s\n' "$p"
  done
}

# Any PostgreSQL server version will do; only a missing one triggers an install.
eie_pkg__pg_server_installed() {
  [[ -n ${EIE_PG_BINDIR:-} ]] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    command -v initdb >/dev/null
}

eie_pkg_install() {
  [[ ${EIE_SKIP_INSTALL:-0} == 1 ]] && return 0
  if ! command -v dpkg-query >/dev/null; then
    eie_warn "not a Debian-like system; install the equivalents of: ${EIE_APT_PACKAGES[*]} postgresql"
    return 0
  fi
  local missing=()
  mapfile -t missing < <(eie_pkg__missing "${EIE_APT_PACKAGES[@]}")
  eie_pkg__pg_server_installed || missing+=(postgresql-15)
  ((${#missing[@]} > 0)) || return 0

  if ! eie_is_root; then
    eie_die "missing packages: ${missing[*]}
  install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    return 1
  fi
  eie_log "installing packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  # Debian 12 ships postgresql-15; elsewhere take the distribution default.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
    missing=("${missing[@]/postgresql-15/postgresql}")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    return 1
}

eie_pkg_swagger_ui_version() {
  local v=""
  read -r v <"$EIE_REPO_ROOT/deploy/swagger-ui.version" 2>/dev/null || true
  printf '%s\n' "$v"
}

# Fetches the npm package swagger-ui-dist at the version pinned in
# deploy/swagger-ui.version once, and prints the directory holding its files,
# for eie-api's --swagger-ui-dir (EIE_SWAGGER_UI_DIR). Unpacked in a temp dir
# and renamed into place, like kafka_fetch.
eie_pkg_fetch_swagger_ui() {
  local version dir tmp tarball f
  version=$(eie_pkg_swagger_ui_version)
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    { eie_die "no version (such as 5.35.0) in deploy/swagger-ui.version"; return 1; }
  dir="$EIE_STATE_DIR/swagger-ui/$version"
  if [[ ! -f $dir/swagger-ui-bundle.js ]]; then
    command -v npm >/dev/null || { eie_die "npm not found (apt-get install npm)"; return 1; }
    mkdir -p "$EIE_STATE_DIR/swagger-ui" || return 1
    tmp=$(mktemp -d "$EIE_STATE_DIR/swagger-ui/.fetch.XXXXXX") || return 1
    eie_log "swagger-ui: fetching swagger-ui-dist $version with npm (first time only)"
    if ! (cd "$tmp" && npm pack --silent --pack-destination "$tmp" "swagger-ui-dist@$version") \
      </dev/null >"$tmp/npm.log" 2>&1; then
      tail -n 40 "$tmp/npm.log" >&2
      rm -rf "$tmp"
      eie_die "npm could not fetch swagger-ui-dist $version"
      return 1
    fi
    tarball=$(compgen -G "$tmp/swagger-ui-dist-*.tgz" | head -n 1 || true)
    if [[ -z $tarball ]] || ! tar -xzf "$tarball" -C "$tmp" package; then
      rm -rf "$tmp"
      eie_die "could not unpack swagger-ui-dist $version"
      return 1
    fi
    for f in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js; do
      if [[ ! -s $tmp/package/$f ]]; then
        rm -rf "$tmp"
        eie_die "swagger-ui-dist $version has no $f"
        return 1
      fi
    done
    # -T: fail rather than nest the dir when a concurrent fetch already won.
    if ! mv -T "$tmp/package" "$dir" 2>/dev/null && [[ ! -f $dir/swagger-ui-bundle.js ]]; then
      rm -rf "$tmp"
      eie_die "could not install Swagger UI into $dir"
      return 1
    fi
    rm -rf "$tmp"
  fi
  printf '%s\n' "$dir"
}
