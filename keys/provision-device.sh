#!/bin/sh
# provision-device.sh: create a device's one key pair where the Mender client reads it, plus
# the certificate and public key to register in Cloud IoT Core / ClearBlade, and the device id.
# POSIX sh + openssl only: runs on a device at first boot (dash, busybox ash) or on a factory
# station. See keys/README.md.
set -u
LC_ALL=C
export LC_ALL

prog=provision-device.sh
key_name=mender-agent.pem
pub_name=device-public.pem
cert_name=device-cert.pem
id_name=device-id

usage() {
	cat <<EOF
Usage: $prog [OPTIONS]

Create the device's private key at DATA_DIR/$key_name (the Mender client's key, mode 0600),
and beside it $pub_name, $cert_name (self-signed X.509, to register in the IoT
registry) and $id_name. Prints the device id and the registration command.

Options:
  --type ec|rsa           key type: EC P-256 (SEC1, ES256) or RSA 3072 (PKCS#1, RS256);
                          default ec
  --data-dir DIR          Mender data directory; default /var/lib/mender
  --device-id ID          registry device id; default g-<contents of /etc/machine-id>
  --machine-id-file FILE  where the default id comes from; default /etc/machine-id
  --days N                certificate validity in days; default 3650
  --force                 replace an existing key (the device must be registered again)
  --reuse-key             keep an existing key; (re)write its public key, certificate, id
  --url URL               the registry's regional API URL, for the printed command;
                          default https://REGION.clearblade.com with --region,
                          else \$CLEARBLADE_URL
  --system-key KEY        the registry's system key, for the printed command;
                          default \$CLEARBLADE_SYSTEM_KEY
  --region R              see --url
  --project P, --registry REG
                          accepted for older callers; not needed (the system key
                          names the registry)
  --rest                  print only the devices.create body (JSON) on stdout
  -h, --help              show this help

The printed command is a curl call to ClearBlade IoT Core's device API, every value
quoted for sh; it reads the registry's token from \$CLEARBLADE_TOKEN (never printed).

Exit status: 0 done, 1 failure, 2 usage error, 3 a key exists (nothing changed).
EOF
}

die() {
	code=$1
	shift
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit "$code"
}

warn() {
	printf '%s: warning: %s\n' "$prog" "$*" >&2
}

# $1 quoted for sh: in single quotes, each ' written as '\''. Pure sh, so any byte survives
# (a command substitution would drop trailing newlines).
sq() {
	rest=$1
	out=
	while :; do
		case $rest in
		*"'"*)
			out="$out${rest%%"'"*}'\\''"
			rest=${rest#*"'"}
			;;
		*) break ;;
		esac
	done
	printf "'%s%s'" "$out" "$rest"
}

# Cloud IoT: [a-zA-Z][a-zA-Z0-9-_.+~%]{2,254}
valid_id() {
	case $1 in
	[a-zA-Z]*) ;;
	*) return 1 ;;
	esac
	case $1 in
	*[!a-zA-Z0-9_.+~%-]*) return 1 ;;
	esac
	[ "${#1}" -ge 3 ] && [ "${#1}" -le 255 ]
}

# openssl prints progress and errors on stderr: keep them only for a failure message.
ossl() {
	what=$1
	shift
	if ! err=$(openssl "$@" 2>&1 >/dev/null); then
		die 1 "openssl could not $what: $(printf '%s' "$err" | head -n 3 | tr '\n' ' ')"
	fi
}

set_paths() {
	key=$data_dir/$key_name
	pub=$data_dir/$pub_name
	cert=$data_dir/$cert_name
	id_file=$data_dir/$id_name
}

key_type=ec
type_given=0
data_dir=/var/lib/mender
device_id=
machine_id_file=/etc/machine-id
days=3650
force=0
reuse=0
project=
region=
registry=
url=
system_key=
rest=0

while [ $# -gt 0 ]; do
	opt=$1
	shift
	has_val=0
	val=
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		has_val=1
		;;
	esac
	case $opt in
	--type | --data-dir | --device-id | --machine-id-file | --days | --project | --region | \
		--registry | --url | --system-key)
		if [ "$has_val" -eq 0 ]; then
			[ $# -gt 0 ] || die 2 "$opt needs a value (see --help)"
			val=$1
			shift
		fi
		;;
	*)
		[ "$has_val" -eq 0 ] || die 2 "$opt takes no value (see --help)"
		;;
	esac
	case $opt in
	--type)
		key_type=$val
		type_given=1
		;;
	--data-dir) data_dir=$val ;;
	--device-id) device_id=$val ;;
	--machine-id-file) machine_id_file=$val ;;
	--days) days=$val ;;
	--project) project=$val ;;
	--region) region=$val ;;
	--registry) registry=$val ;;
	--url) url=$val ;;
	--system-key) system_key=$val ;;
	--force) force=1 ;;
	--reuse-key) reuse=1 ;;
	--rest) rest=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die 2 "unknown option '$opt' (see --help)" ;;
	esac
done

case $key_type in
ec | rsa) ;;
*) die 2 "--type must be ec or rsa, got '$key_type'" ;;
esac
case $days in
'' | *[!0-9]* | 0) die 2 "--days must be a positive whole number, got '$days'" ;;
esac
[ "$force" -eq 1 ] && [ "$reuse" -eq 1 ] && die 2 "--force and --reuse-key exclude each other"
[ -n "$data_dir" ] || die 2 "--data-dir must not be empty"

command -v openssl >/dev/null 2>&1 ||
	die 1 "openssl not found in PATH (on Yocto, add openssl-bin to the image)"

if [ -z "$device_id" ]; then
	[ -r "$machine_id_file" ] ||
		die 1 "cannot read $machine_id_file to make the default device id; give --device-id"
	machine_id=$(tr -d ' \t\r\n' <"$machine_id_file")
	[ -n "$machine_id" ] || die 1 "$machine_id_file is empty; give --device-id"
	device_id="g-$machine_id"
fi
valid_id "$device_id" ||
	die 2 "invalid device id '$device_id': Cloud IoT needs [a-zA-Z][a-zA-Z0-9-_.+~%]{2,254}"

set_paths

if [ -d "$key" ]; then
	die 1 "$key is a directory, not a key file"
elif [ -e "$key" ] || [ -L "$key" ]; then
	if [ "$reuse" -eq 0 ] && [ "$force" -eq 0 ]; then
		die 3 "a key already exists at $key; nothing changed (--reuse-key keeps it and" \
			"rewrites the certificate, --force replaces it)"
	fi
elif [ "$reuse" -eq 1 ]; then
	die 1 "--reuse-key: no key at $key"
fi

# umask 077: every directory this creates is 0700, whatever the caller's umask.
(umask 077 && mkdir -p "$data_dir") 2>/dev/null || die 1 "cannot create data directory $data_dir"
[ -d "$data_dir" ] || die 1 "$data_dir is not a directory"
data_dir=$(cd "$data_dir" && pwd -P) || die 1 "cannot enter $data_dir"
set_paths

year=$(date -u +%Y)
if [ "$year" -lt 2024 ]; then
	warn "the clock reads year $year: the certificate's validity starts now; set the clock" \
		"and run again with --reuse-key, or register $pub_name instead"
fi

tmp=$data_dir/.provision.$$
trap 'rm -f "$tmp.key" "$tmp.pub" "$tmp.cert" "$tmp.id" "$tmp.cnf"' EXIT
trap 'exit 1' INT TERM HUP
rm -f "$tmp.key" "$tmp.pub" "$tmp.cert" "$tmp.id" "$tmp.cnf"
(: >"$tmp.cnf") 2>/dev/null || die 1 "cannot write in $data_dir"

if [ "$reuse" -eq 1 ]; then
	src=$key
	ossl "read the key $key" pkey -in "$key" -pubout -out "$tmp.pub"
	if openssl pkey -pubin -in "$tmp.pub" -noout -text 2>/dev/null | grep -q 'prime256v1'; then
		found=ec
	elif openssl pkey -pubin -in "$tmp.pub" -noout -text 2>/dev/null | grep -q '^Modulus'; then
		found=rsa
	else
		die 1 "the key at $key is neither EC P-256 nor RSA"
	fi
	if [ "$type_given" -eq 1 ] && [ "$found" != "$key_type" ]; then
		die 2 "--type $key_type, but the key at $key is $found"
	fi
	key_type=$found
	case $(head -n 1 "$key") in
	'-----BEGIN EC PRIVATE KEY-----' | '-----BEGIN RSA PRIVATE KEY-----') ;;
	*) warn "the key at $key is not in SEC1/PKCS#1 form, the form the Mender client is known to read" ;;
	esac
else
	src=$tmp.key
	# umask 077 before the file exists: the key is never readable by others, not even briefly.
	if [ "$key_type" = ec ]; then
		(umask 077 && ossl "generate an EC P-256 key" ecparam -name prime256v1 -genkey \
			-noout -out "$tmp.key") || exit 1
	else
		# OpenSSL 3 writes PKCS#8 unless told -traditional; 1.1 writes PKCS#1 and lacks the flag.
		trad=
		if openssl genrsa -help 2>&1 | grep -q -e '-traditional'; then
			trad=-traditional
		fi
		# shellcheck disable=SC2086 # $trad is empty or one word
		(umask 077 && ossl "generate an RSA 3072 key" genrsa $trad -out "$tmp.key" 3072) ||
			exit 1
	fi
	chmod 600 "$tmp.key" || die 1 "cannot chmod $tmp.key"
	case $(head -n 1 "$tmp.key") in
	'-----BEGIN EC PRIVATE KEY-----' | '-----BEGIN RSA PRIVATE KEY-----') ;;
	*) die 1 "openssl did not write a SEC1/PKCS#1 key, which the Mender client needs" ;;
	esac
	ossl "derive the public key" pkey -in "$tmp.key" -pubout -out "$tmp.pub"
fi

if [ "$key_type" = ec ]; then
	fmt=ES256_X509_PEM pub_fmt=ES256_PEM desc="EC P-256, SEC1"
else
	fmt=RSA_X509_PEM pub_fmt=RSA_PEM desc="RSA 3072, PKCS#1"
fi

# X.509 caps a common name at 64 characters; the registry does not read it.
common_name=$(printf '%s' "$device_id" | cut -c 1-64)
cat >"$tmp.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = $common_name
[v3]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
EOF
ossl "make the certificate" req -new -x509 -config "$tmp.cnf" -key "$src" -sha256 \
	-days "$days" -out "$tmp.cert"
printf '%s\n' "$device_id" >"$tmp.id" || die 1 "cannot write in $data_dir"
chmod 644 "$tmp.pub" "$tmp.cert" "$tmp.id" || die 1 "cannot chmod files in $data_dir"

if ! { mv -f "$tmp.pub" "$pub" && mv -f "$tmp.cert" "$cert" && mv -f "$tmp.id" "$id_file"; }; then
	die 1 "cannot write the public files in $data_dir"
fi
# The key goes in last: it is the commit point, so a failed run leaves no half-made kit.
if [ "$reuse" -eq 0 ]; then
	mv -f "$tmp.key" "$key" || die 1 "cannot write $key"
fi

# The device id is validated (no quote, backslash or control character) and the certificate is
# base64 between two fixed lines, so only its newlines need escaping for JSON.
body=$(printf '{"id":"%s","credentials":[{"publicKey":{"format":"%s","key":"%s"}}]}' \
	"$device_id" "$fmt" "$(awk '{printf "%s\\n", $0}' "$cert")")
if [ -n "$url" ]; then
	target=$(sq "${url%/}")
elif [ -n "$region" ]; then
	target=$(sq "https://$region.clearblade.com")
else
	target="\"\$CLEARBLADE_URL\""
fi
if [ -n "$system_key" ]; then
	target="$target/api/v/4/webhook/execute/$(sq "$system_key")/cloudiot_devices"
else
	target="$target/api/v/4/webhook/execute/\"\$CLEARBLADE_SYSTEM_KEY\"/cloudiot_devices"
fi
# $CLEARBLADE_TOKEN (and the placeholders above) are for the shell the command is pasted in.
register="curl -fsS -X POST -H \"ClearBlade-UserToken: \$CLEARBLADE_TOKEN\""
register="$register -H 'Content-Type: application/json' --data-binary $(sq "$body") $target"

summary() {
	printf 'device id:   %s\n' "$device_id"
	printf 'private key: %s (%s; it never leaves this device)\n' "$key" "$desc"
	printf 'public key:  %s (%s)\n' "$pub" "$pub_fmt"
	printf 'certificate: %s (%s, %s days)\n' "$cert" "$fmt" "$days"
	printf "register it with ClearBlade IoT Core (URL, system key, token: the registry's API Keys):\n  %s\n" "$register"
}

if [ -n "$project$registry" ]; then
	warn "--project and --registry are not needed: the system key (--system-key) names the" \
		"registry"
fi
if [ "$rest" -eq 1 ]; then
	summary >&2
	printf '%s\n' "$body"
else
	summary
fi
