#!/bin/sh
# make-test-pki.sh DIR: a throwaway ECDSA P-256 PKI for segw-ike-load and
# bench/ike, made with the openssl CLI. Writes into DIR:
#   ca.pem, ca.key            the CA (C=DE, O=segw test, CN=segw load CA)
#   gateway.pem, gateway.key  the responder: SAN DNS:segw.example
#   device.pem, device.key    the load tool: SAN DNS:load.fap.example
# Keys are unencrypted PKCS#8. Test material only: never deploy it.
set -eu
dir=${1:?usage: make-test-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
subject="/C=DE/O=segw test"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "$subject/CN=segw load CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
for who in gateway:segw.example device:load.fap.example; do
  name=${who%%:*}
  fqdn=${who#*:}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subject/CN=$fqdn" -out "$name.csr"
  printf 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nsubjectAltName=DNS:%s\n' "$fqdn" \
    > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
done
rm -f ca.srl
