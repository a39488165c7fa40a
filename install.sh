#!/bin/sh
# Installs regente and runs it as a service.
#
#   curl -sfL <url>/install.sh | sh -
#   curl -sfL <url>/install.sh | REGENTE_URL=https://server:6443 REGENTE_TOKEN=... sh -
#   curl -sfL <url>/install.sh | sh -s - server --disable servicelb
#
# Re-running it upgrades in place: the binary, the unit and the scripts are
# replaced, the data dir is kept, and a running service is restarted.
#
# Environment (each INSTALL_REGENTE_* is optional):
#   INSTALL_REGENTE_VERSION       release to download (default: the latest)
#   INSTALL_REGENTE_SKIP_DOWNLOAD true: use the binary already in the bin dir
#                                 (air-gapped sites copy it there first)
#   INSTALL_REGENTE_BIN_DIR       where the binary and scripts go (/usr/local/bin)
#   INSTALL_REGENTE_EXEC          command and flags, e.g. "server --disable servicelb";
#                                 a leading "server" or "agent" picks the role
#   INSTALL_REGENTE_NAME          service name suffix: regente-<name>
#   INSTALL_REGENTE_SKIP_ENABLE   true: do not enable the service at boot
#   INSTALL_REGENTE_SKIP_START    true: do not start (or restart) the service
#   INSTALL_REGENTE_SYMLINK       skip: no kubectl/crictl/ctr links; force: replace
#                                 existing ones (default: only where none exists)
#   INSTALL_REGENTE_SYSTEMD_DIR   where units go (/etc/systemd/system)
#   INSTALL_REGENTE_DOWNLOAD_URL  where releases are (see DOWNLOAD_URL below)
#   REGENTE_URL, REGENTE_TOKEN    the server to join and its token: makes an agent
#   REGENTE_*                     any other regente setting, kept in the env file
set -e
set -o noglob

DOWNLOAD_URL=${INSTALL_REGENTE_DOWNLOAD_URL:-https://github.com/regente-io/regente/releases}

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
    echo "[ERROR] $*" >&2
    exit 1
}

# is_true accepts the spellings people type for yes.
is_true() {
    case "$1" in
        true | TRUE | True | yes | 1) return 0 ;;
    esac
    return 1
}

setup_sudo() {
    SUDO=sudo
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=
    elif ! command -v sudo >/dev/null 2>&1; then
        fatal "run as root, or install sudo"
    fi
}

# setup_role splits INSTALL_REGENTE_EXEC and the script's arguments into the
# command (server or agent) and its flags, as k3s's installer does.
setup_role() {
    set +o noglob
    # shellcheck disable=SC2086 # word splitting of the EXEC string is the point
    set -- ${INSTALL_REGENTE_EXEC} "$@"
    set -o noglob
    case "$1" in
        server | agent)
            CMD=$1
            shift
            ;;
        -*|'')
            CMD=server
            if [ -n "${REGENTE_URL}" ]; then
                CMD=agent
            fi
            ;;
        *)
            fatal "INSTALL_REGENTE_EXEC or the arguments start with \"$1\": start them with server, agent or a flag"
            ;;
    esac
    if [ "${CMD}" = agent ]; then
        # The server and token may also come as flags or from the config
        # file, which regente itself reads.
        if [ -z "${REGENTE_URL}" ] && [ -z "${REGENTE_SERVER}" ] && ! has_setting server "$@"; then
            fatal "an agent needs REGENTE_URL, the server to join (https://<server>:6443), or --server, or server: in ${CONFIG_FILE}"
        fi
        if [ -z "${REGENTE_TOKEN}" ] && [ -z "${REGENTE_TOKEN_FILE}" ] && ! has_setting token "$@" && ! has_setting token-file "$@"; then
            fatal "an agent needs REGENTE_TOKEN (or REGENTE_TOKEN_FILE, --token, token: in ${CONFIG_FILE}): read it on the server from /var/lib/regente/server/token"
        fi
        case "${REGENTE_URL}" in
            https://* | '') ;;
            *) fatal "REGENTE_URL ${REGENTE_URL} must start with https://" ;;
        esac
    fi
    EXEC_ARGS=""
    for arg in "$@"; do
        EXEC_ARGS="${EXEC_ARGS} '$(printf '%s' "${arg}" | sed "s/'/'\\\\''/g")'"
    done
    # The data dir the service uses, for the killall and uninstall scripts:
    # they run later, under sudo, without the installer's environment.
    DATA_DIR=${REGENTE_DATA_DIR:-$(setting data-dir "$@")}
    DATA_DIR=${DATA_DIR:-/var/lib/regente}
    case "${DATA_DIR}" in
        / | *[!a-zA-Z0-9_./-]*) fatal "the data dir ${DATA_DIR} must be an absolute path of letters, digits, '_', '.', '-' and '/', not /" ;;
        /*) ;;
        *) fatal "the data dir ${DATA_DIR} must be an absolute path" ;;
    esac
}

CONFIG_FILE=/etc/regente/config.yaml

# setting prints the value of flag $1 among the remaining arguments
# (--name value or --name=value), else of the key $1 in the config file.
setting() {
    name=$1
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --"${name}"=*) printf '%s\n' "${1#*=}"; return ;;
            --"${name}") printf '%s\n' "$2"; return ;;
        esac
        shift
    done
    if [ -r "${CONFIG_FILE}" ]; then
        sed -n "s/^${name}:[[:space:]]*//p" "${CONFIG_FILE}" | sed "s/^[\"']//; s/[\"'][[:space:]]*\$//" | head -n 1
    fi
}

has_setting() { [ -n "$(setting "$@")" ]; }

setup_names() {
    BIN_DIR=${INSTALL_REGENTE_BIN_DIR:-/usr/local/bin}
    SYSTEMD_DIR=${INSTALL_REGENTE_SYSTEMD_DIR:-/etc/systemd/system}
    if [ -n "${INSTALL_REGENTE_NAME}" ]; then
        SYSTEM_NAME=regente-${INSTALL_REGENTE_NAME}
    elif [ "${CMD}" = server ]; then
        SYSTEM_NAME=regente
    else
        SYSTEM_NAME=regente-${CMD}
    fi
    case "${SYSTEM_NAME}" in
        *[!a-zA-Z0-9_.-]*) fatal "INSTALL_REGENTE_NAME ${INSTALL_REGENTE_NAME} may hold only letters, digits, '_', '.' and '-'" ;;
    esac
    KILLALL=${BIN_DIR}/regente-killall.sh
    UNINSTALL=${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh
}

# setup_init picks systemd or openrc by what runs this machine.
setup_init() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        INIT=systemd
        SERVICE_FILE=${SYSTEMD_DIR}/${SYSTEM_NAME}.service
        ENV_FILE=${SYSTEMD_DIR}/${SYSTEM_NAME}.service.env
    elif command -v openrc-run >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then
        INIT=openrc
        SERVICE_FILE=/etc/init.d/${SYSTEM_NAME}
        ENV_FILE=/etc/regente/${SYSTEM_NAME}.env
    else
        fatal "neither systemd nor openrc runs this machine: run '${BIN_DIR}/regente ${CMD}' under your own supervisor"
    fi
}

setup_arch() {
    case "$(uname -m)" in
        x86_64 | amd64) ARCH=amd64 SUFFIX= ;;
        aarch64 | arm64) ARCH=arm64 SUFFIX=-arm64 ;;
        armv7* | armv8l | arm) ARCH=armv7 SUFFIX=-armv7 ;;
        *) fatal "no regente build for $(uname -m): amd64, arm64 and armv7 are built" ;;
    esac
}

download() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL -o "$1" "$2" || fatal "download $2 failed"
    elif command -v wget >/dev/null 2>&1; then
        wget -qO "$1" "$2" || fatal "download $2 failed"
    else
        fatal "install curl or wget to download regente"
    fi
}

# latest_version follows the releases' "latest" redirect.
latest_version() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL -o /dev/null -w '%{url_effective}' "${DOWNLOAD_URL}/latest" | sed 's|.*/||'
    else
        wget -S -O /dev/null "${DOWNLOAD_URL}/latest" 2>&1 | sed -n 's|^ *Location: .*/||p' | tail -n 1
    fi
}

download_binary() {
    VERSION=${INSTALL_REGENTE_VERSION:-$(latest_version)}
    [ -n "${VERSION}" ] || fatal "cannot find the latest release at ${DOWNLOAD_URL}: set INSTALL_REGENTE_VERSION"
    TMP_DIR=$(mktemp -d -t regente-install.XXXXXXXXXX)
    trap 'rm -rf "${TMP_DIR}"' EXIT
    info "Downloading regente ${VERSION} for ${ARCH}"
    download "${TMP_DIR}/sums" "${DOWNLOAD_URL}/download/${VERSION}/sha256sum-${ARCH}.txt"
    download "${TMP_DIR}/regente" "${DOWNLOAD_URL}/download/${VERSION}/regente${SUFFIX}"
    want=$(awk -v f="regente${SUFFIX}" '$2 == f || $2 == "*" f { print $1 }' "${TMP_DIR}/sums")
    got=$(sha256sum "${TMP_DIR}/regente" | awk '{ print $1 }')
    [ -n "${want}" ] || fatal "sha256sum-${ARCH}.txt lists no regente${SUFFIX}"
    [ "${want}" = "${got}" ] || fatal "checksum of regente${SUFFIX} is ${got}, the release says ${want}: the download is corrupt or tampered with; nothing was installed"
    chmod 755 "${TMP_DIR}/regente"
    $SUDO mkdir -p "${BIN_DIR}"
    # Through a temporary name and rename, so a running regente keeps its
    # old inode and an interrupted copy never leaves half a binary.
    $SUDO cp "${TMP_DIR}/regente" "${BIN_DIR}/regente.new"
    $SUDO mv -f "${BIN_DIR}/regente.new" "${BIN_DIR}/regente"
    # The release file is compressed; its first run unpacks it in place,
    # which is better done now than in the service's first start.
    info "Unpacking ${BIN_DIR}/regente"
    $SUDO "${BIN_DIR}/regente" --version >/dev/null 2>&1 || fatal "${BIN_DIR}/regente --version failed: is ${BIN_DIR} writable, and is it the build for $(uname -m)?"
    info "Installed ${BIN_DIR}/regente"
}

verify_binary() {
    [ -x "${BIN_DIR}/regente" ] || fatal "INSTALL_REGENTE_SKIP_DOWNLOAD is set but ${BIN_DIR}/regente is not an executable: copy the release binary there first"
    "${BIN_DIR}/regente" --version >/dev/null 2>&1 || fatal "${BIN_DIR}/regente --version failed: is it the build for $(uname -m)?"
    info "Using the binary in ${BIN_DIR}/regente"
}

create_symlinks() {
    [ "${INSTALL_REGENTE_SYMLINK}" = skip ] && return
    for cmd in kubectl crictl ctr; do
        if [ -e "${BIN_DIR}/${cmd}" ] && [ "${INSTALL_REGENTE_SYMLINK}" != force ]; then
            info "Keeping ${BIN_DIR}/${cmd} (INSTALL_REGENTE_SYMLINK=force replaces it)"
            continue
        fi
        which_cmd=$(command -v "${cmd}" 2>/dev/null || true)
        if [ -n "${which_cmd}" ] && [ "${which_cmd}" != "${BIN_DIR}/${cmd}" ] && [ "${INSTALL_REGENTE_SYMLINK}" != force ]; then
            info "Skipping ${cmd}: ${which_cmd} is already on PATH"
            continue
        fi
        $SUDO ln -sf regente "${BIN_DIR}/${cmd}"
        info "Linked ${BIN_DIR}/${cmd} to regente"
    done
}

# write_file writes stdin to $1 with mode $2, atomically.
write_file() {
    $SUDO mkdir -p "$(dirname "$1")"
    $SUDO sh -c "umask 077 && cat > '$1.tmp' && chmod $2 '$1.tmp' && mv -f '$1.tmp' '$1'"
}

create_env_file() {
    # An upgrade run without the settings of the first one keeps them.
    if [ -f "${ENV_FILE}" ] && ! env | grep -qE '^REGENTE_'; then
        info "Keeping ${ENV_FILE}: no REGENTE_* setting given"
        return
    fi
    # Keys are kept from the environment the installer ran in; REGENTE_URL
    # and REGENTE_TOKEN are among them, so the file is root's alone.
    env | grep -E '^(REGENTE_|CONTAINERD_|HTTPS?_PROXY=|NO_PROXY=|https?_proxy=|no_proxy=)' |
        sed "s/'/'\\\\''/g; s/=/='/; s/\$/'/" | write_file "${ENV_FILE}" 600
    info "Wrote ${ENV_FILE}"
}

create_killall() {
    write_file "${KILLALL}" 755 <<EOF
#!/bin/sh
# Stops regente and everything it started: the service, pods, shims,
# mounts, pod network devices and iptables/nftables rules. The data stays.
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
for service in ${SYSTEMD_DIR}/regente*.service; do
    [ -s "\${service}" ] && systemctl stop "\$(basename "\${service}")"
done
for service in /etc/init.d/regente*; do
    [ -x "\${service}" ] && "\${service}" stop
done
pkill -KILL -x regente || true
# The pods, their shims and containerd, the bridge and flannel's device,
# the CNI, kube-proxy, flannel and network-policy rules, and the mounts.
data_dir="\${REGENTE_DATA_DIR:-${DATA_DIR}}"
"${BIN_DIR}/regente" killall --data-dir "\${data_dir}" --run-dir /run/regente
exit 0
EOF
    info "Wrote ${KILLALL}"
}

create_uninstall() {
    if [ "${INIT}" = systemd ]; then
        remove_service="systemctl disable ${SYSTEM_NAME} || true
systemctl reset-failed ${SYSTEM_NAME} || true"
        reload_init="systemctl daemon-reload"
    else
        remove_service="rc-update delete ${SYSTEM_NAME} default || true"
        reload_init=":"
    fi
    write_file "${UNINSTALL}" 755 <<EOF
#!/bin/sh
# Removes ${SYSTEM_NAME}: the service, and once no regente service is
# left, the binary, its links, the scripts, /etc/regente and the data dir.
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
"${KILLALL}"
${remove_service}
rm -f "${SERVICE_FILE}" "${ENV_FILE}"
${reload_init}
remove_uninstall() { rm -f "${UNINSTALL}"; }
trap remove_uninstall EXIT
# One ls per kind of service: one of the two globs never matches.
if ls ${SYSTEMD_DIR}/regente*.service >/dev/null 2>&1 || ls /etc/init.d/regente* >/dev/null 2>&1; then
    set +x
    echo "Other regente services remain; the binary and data stay."
    exit
fi
for cmd in kubectl crictl ctr; do
    if [ -L "${BIN_DIR}/\${cmd}" ] && [ "\$(readlink "${BIN_DIR}/\${cmd}")" = regente ]; then
        rm -f "${BIN_DIR}/\${cmd}"
    fi
done
data_dir="\${REGENTE_DATA_DIR:-${DATA_DIR}}"
# A mount still below the data dir (a volume of a pod regente did not end)
# would have its contents removed with it.
if awk -v d="\${data_dir}" 'index(\$2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    set +x
    echo "Mounts remain below \${data_dir} (see /proc/self/mounts): unmount them, then run this again." >&2
    trap - EXIT
    exit 1
fi
rm -rf /etc/regente /run/regente
# A data dir that is a mount of its own keeps the mount point.
if awk -v d="\${data_dir}" '\$2 == d { found = 1 } END { exit !found }' /proc/self/mounts; then
    find "\${data_dir}" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
else
    rm -rf "\${data_dir}"
fi
rm -f "${BIN_DIR}/regente" "${KILLALL}"
EOF
    info "Wrote ${UNINSTALL}"
}

create_systemd_unit() {
    write_file "${SERVICE_FILE}" 644 <<EOF
[Unit]
Description=regente: Kubernetes in one binary (${CMD})
Documentation=https://github.com/regente-io/regente
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
# regente tells systemd when the ${CMD} serves (sd_notify READY=1).
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${ENV_FILE}
# Pods and their shims are not regente's children to kill: they keep
# running while regente restarts or upgrades; regente-killall.sh ends them.
KillMode=process
# The kubelet manages the cgroups of pods below regente's own.
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
# The first start imports the bundled images: no time limit.
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BIN_DIR}/regente ${CMD}$(printf '%s' "${EXEC_ARGS}" | sed 's/%/%%/g; s/\$/$$/g')
EOF
    info "Wrote ${SERVICE_FILE}"
}

create_openrc_script() {
    write_file "${SERVICE_FILE}" 755 <<EOF
#!/sbin/openrc-run
description="regente: Kubernetes in one binary (${CMD})"

depend() {
    after network-online
    want cgroups
}

start_pre() {
    modprobe br_netfilter 2>/dev/null || true
    modprobe overlay 2>/dev/null || true
}

supervisor=supervise-daemon
name=${SYSTEM_NAME}
command="${BIN_DIR}/regente"
command_args="${CMD}$(printf '%s' "${EXEC_ARGS}" | sed 's/[\\"$`]/\\&/g')"
output_log=/var/log/${SYSTEM_NAME}.log
error_log=/var/log/${SYSTEM_NAME}.log
pidfile="/var/run/${SYSTEM_NAME}.pid"
respawn_delay=5
respawn_max=0

set -o allexport
if [ -f /etc/environment ]; then . /etc/environment; fi
if [ -f ${ENV_FILE} ]; then . ${ENV_FILE}; fi
set +o allexport
EOF
    info "Wrote ${SERVICE_FILE}"
}

start_service() {
    if [ "${INIT}" = systemd ]; then
        $SUDO systemctl daemon-reload
        is_true "${INSTALL_REGENTE_SKIP_ENABLE}" || $SUDO systemctl enable "${SYSTEM_NAME}" >/dev/null
        if ! is_true "${INSTALL_REGENTE_SKIP_START}"; then
            info "Starting ${SYSTEM_NAME}"
            $SUDO systemctl restart "${SYSTEM_NAME}"
        fi
    else
        is_true "${INSTALL_REGENTE_SKIP_ENABLE}" || $SUDO rc-update add "${SYSTEM_NAME}" default >/dev/null
        if ! is_true "${INSTALL_REGENTE_SKIP_START}"; then
            info "Starting ${SYSTEM_NAME}"
            $SUDO "${SERVICE_FILE}" restart
        fi
    fi
}

main() {
    setup_sudo
    setup_role "$@"
    setup_names
    setup_init
    setup_arch
    if is_true "${INSTALL_REGENTE_SKIP_DOWNLOAD}"; then
        verify_binary
    else
        download_binary
    fi
    create_symlinks
    create_killall
    create_uninstall
    create_env_file
    if [ "${INIT}" = systemd ]; then
        create_systemd_unit
    else
        create_openrc_script
    fi
    start_service
    info "Done. The kubeconfig is /etc/regente/regente.yaml once the ${CMD} runs; uninstall with ${UNINSTALL}"
}

main "$@"
