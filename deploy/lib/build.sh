# shellcheck shell=bash
# Building the programs with CMake (eie_build).

# eie_build BUILD_DIR [extra cmake args...]; BUILD_DIR is relative to the repo.
eie_build() {
  local dir=$1
  shift
  [[ $dir == /* ]] || dir="$EIE_REPO_ROOT/$dir"
  [[ -f $EIE_REPO_ROOT/CMakeLists.txt ]] || { eie_die "no CMakeLists.txt in $EIE_REPO_ROOT"; return 1; }
  local args=("$@")
  [[ " $* " == *" -DCMAKE_BUILD_TYPE="* ]] || args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "${args[@]}")
  mkdir -p "$dir" || return 1
  eie_log "build: configuring $dir"
  # Configure output is noise unless it fails; compiler output stays visible.
  if ! cmake -S "$EIE_REPO_ROOT" -B "$dir" "${args[@]}" >"$dir/eie-configure.log" 2>&1; then
    EIE_TAIL_LINES=60 eie_show_tail "$dir/eie-configure.log"
    eie_die "cmake configure failed (full log: $dir/eie-configure.log)"
    return 1
  fi
  eie_log "build: compiling $dir"
  cmake --build "$dir" -j "${EIE_BUILD_JOBS:-$(nproc)}" || { eie_die "build failed in $dir"; return 1; }
}
