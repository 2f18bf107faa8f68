#!/usr/bin/env bash
# Runs Ambrosia's whole check suite: formatting, go vet, staticcheck and all
# Go tests with the race detector, end-to-end tests included. It installs the
# Debian packages the end-to-end tests drive when they are missing.
#
#   ./test.sh          everything (what CI runs)
#   ./test.sh -short   skip the end-to-end tests and the package installation
#
# The last line is "N passed, N failed", counting Go tests; the exit status
# is non-zero if any test or check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

STATICCHECK_VERSION=0.8.2 # staticcheck 2026.2.2, which supports Go 1.26
# e2e/testdata/requirements.tsv lists what the end-to-end tests use and the
# Debian package of each; it is the one list of them.
REQUIREMENTS=e2e/testdata/requirements.tsv
mapfile -t DEBIAN_PACKAGES < <(awk -F'\t' '!/^#/ && NF >= 3 { print $1 }' "$REQUIREMENTS" | sort -u)

short=0
for arg in "$@"; do
	case "$arg" in
	-short | --short) short=1 ;;
	*)
		echo "usage: $0 [-short]" >&2
		exit 2
		;;
	esac
done

step() { printf '\n==> %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "test.sh: need root to run: $*" >&2
		echo "test.sh: run as root, install sudo, or install the packages yourself: ${DEBIAN_PACKAGES[*]}" >&2
		exit 1
	fi
}

install_packages() {
	local missing=() p
	local wanted=("${DEBIAN_PACKAGES[@]}")
	# go test -race needs cgo, and Go turns cgo off when it finds no C compiler.
	if ! command -v gcc >/dev/null 2>&1; then
		wanted+=(gcc libc6-dev)
	fi
	for p in "${wanted[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && ! provided "$p"; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return
	fi
	step "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	# The packages may start their system services, and the end-to-end
	# test needs port 6667 for its own ngircd: stop the ones just installed.
	for p in "${missing[@]}"; do
		case "$p" in
		ngircd | biboumi)
			if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
				as_root systemctl stop "$p" || true
			elif command -v service >/dev/null 2>&1; then
				as_root service "$p" stop >/dev/null 2>&1 || true
			fi
			;;
		esac
	done
}

# present KIND NAME: whether the tool of one line of the requirements is there.
present() {
	local kind="$1" name="$2" interp d
	case "$kind" in
	program)
		command -v "$name" >/dev/null 2>&1 && return 0
		for d in /usr/sbin /sbin /usr/local/sbin; do
			[ -x "$d/$name" ] && return 0
		done
		return 1
		;;
	python)
		# Not the python3 on PATH, which may be a pyenv shim without
		# Debian's modules: the tests run /usr/bin/python3 too.
		/usr/bin/python3 -c "import $name" >/dev/null 2>&1
		;;
	lua)
		# The interpreter that runs Prosody, named in its #! line.
		interp="$(head -n 1 "$(command -v prosody 2>/dev/null || echo /usr/bin/prosody)" 2>/dev/null | sed -n 's|^#! *\(/usr/bin/env  *\)\{0,1\}||p')"
		[ -n "$interp" ] && $interp -e "require '$name'" >/dev/null 2>&1
		;;
	prosody)
		[ -f "/usr/lib/prosody/modules/$name.lua" ] || [ -f "/usr/lib/prosody/modules/$name/$name.lua" ]
		;;
	postgres)
		for d in /usr/lib/postgresql/*/bin; do
			[ -x "$d/initdb" ] && [ -x "$d/$name" ] && return 0
		done
		command -v initdb >/dev/null 2>&1 && command -v "$name" >/dev/null 2>&1
		;;
	*)
		echo "test.sh: $REQUIREMENTS: unknown kind $kind" >&2
		return 1
		;;
	esac
}

# provided PACKAGE: whether everything the requirements take from the
# package is there already, installed otherwise (npm and node from
# NodeSource's nodejs rather than Debian's npm, which would conflict).
provided() {
	local pkg kind name n=0
	while IFS=$'\t' read -r pkg kind name; do
		case "$pkg" in '#'* | '') continue ;; esac
		[ "$pkg" = "$1" ] || continue
		n=$((n + 1))
		present "$kind" "$name" || return 1
	done <"$REQUIREMENTS"
	[ "$n" -gt 0 ]
}

# verify_requirements stops the run, naming the packages, when anything the
# end-to-end tests use is missing after the installation.
verify_requirements() {
	local pkg kind name n=0 bad=()
	step "checking what the end-to-end tests use"
	while IFS=$'\t' read -r pkg kind name; do
		case "$pkg" in '#'* | '') continue ;; esac
		n=$((n + 1))
		if ! present "$kind" "$name"; then
			echo "missing $kind $name: install the Debian package $pkg"
			bad+=("$pkg")
		fi
	done <"$REQUIREMENTS"
	if [ "${#bad[@]}" -ne 0 ]; then
		echo "test.sh: missing Debian packages: $(printf '%s\n' "${bad[@]}" | sort -u | tr '\n' ' ')" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "all $n present"
}

if [ "$short" -eq 0 ]; then
	install_packages
	verify_requirements
	# The browser tests' npm modules (Converse.js, playwright-core), as
	# pinned by e2e/testdata/browser/package-lock.json; no install scripts,
	# so nothing downloads a browser (the tests use Debian's chromium).
	step "npm ci in e2e/testdata/browser"
	npm ci --prefix e2e/testdata/browser --ignore-scripts --no-audit --no-fund
fi

# Tools are built into the repository's own cache so that nothing outside it
# changes and go.mod stays untouched.
export GOBIN="$PWD/.cache/bin"
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -qF "($STATICCHECK_VERSION)"; then
	step "installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@v$STATICCHECK_VERSION"
fi

lint_failed=0

step "gofmt"
unformatted="$(gofmt -l . | grep -v '^\.cache/' || true)"
if [ -n "$unformatted" ]; then
	echo "not gofmt'd (run gofmt -w):"
	echo "$unformatted"
	lint_failed=$((lint_failed + 1))
fi

step "go vet"
if ! go vet ./...; then
	lint_failed=$((lint_failed + 1))
fi

step "staticcheck"
if ! "$GOBIN/staticcheck" ./...; then
	lint_failed=$((lint_failed + 1))
fi

step "go test"
# go test's own limit is 10 minutes per package; the end-to-end package
# takes about 6 on an idle 2-core machine and went past 10 on a busy one.
test_args=(-race -count=1 -json -timeout 45m)
if [ "$short" -eq 1 ]; then
	test_args+=(-short)
else
	export AMBROSIA_E2E=1
fi
counts="$(mktemp)"
trap 'rm -f "$counts"' EXIT
set +e
go test "${test_args[@]}" ./... 2>&1 | go run ./e2e/internal/testcount -counts "$counts"
statuses=("${PIPESTATUS[@]}")
set -e
go_status="${statuses[0]}"
count_status="${statuses[1]}"

read -r passed failed _ <"$counts" || { passed=0; failed=0; }
if [ "$count_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "test counter failed (status $count_status)"
	failed=1
fi
if [ "$go_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "go test exited with status $go_status although no test failed; see its output above"
	failed=1
fi
if [ "$lint_failed" -ne 0 ]; then
	echo "$lint_failed of gofmt, go vet and staticcheck failed; see above"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$lint_failed" -eq 0 ]
