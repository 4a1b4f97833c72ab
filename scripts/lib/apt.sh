# apt_ensure LABEL PACKAGE...: installs the Debian packages that are not installed yet, and never touches apt
# when all of them are. LABEL prefixes the messages. Sourced by the deps scripts.
apt_ensure() {
	local label=$1 p
	shift
	local missing=()
	for p in "$@"; do
		if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		echo "$label: all $# packages present"
		return 0
	fi
	echo "$label: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	echo "$label: installed ${#missing[@]} packages"
}
