#!/usr/bin/python3
# Independent expected values for controlplane/crypto tests, computed with
# Python's hmac/hashlib (not the code under test). Run: python3 this_file.
# Output is pasted into tests/unit/controlplane/crypto/*_test.cc as constants.
import hashlib
import hmac

H = {256: hashlib.sha256, 384: hashlib.sha384, 512: hashlib.sha512}

def prf(bits, key, data):
    return hmac.new(key, data, H[bits]).digest()

def prf_plus(bits, key, seed, length):
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf(bits, key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]

def show(name, value):
    print(f"{name} = {value.hex()}")

# prf+ (RFC 7296 §2.13)
key = bytes(range(32))
seed = b"IKEv2 prf+ seed" + bytes(range(64))
for bits in (256, 384, 512):
    show(f"prf_plus_{bits}_len200", prf_plus(bits, key, seed, 200))

# IKE SA keys (RFC 7296 §2.14): PRF_HMAC_SHA2_256, AES-CBC-256, HMAC-SHA2-256-128
ni, nr = bytes([0x11]) * 32, bytes([0x22]) * 32
gir = bytes([0x33]) * 256
spii, spir = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")
skeyseed = prf(256, ni + nr, gir)
show("skeyseed", skeyseed)
lens = [("sk_d", 32), ("sk_ai", 32), ("sk_ar", 32), ("sk_ei", 32), ("sk_er", 32), ("sk_pi", 32), ("sk_pr", 32)]
stream = prf_plus(256, skeyseed, ni + nr + spii + spir, sum(l for _, l in lens))
off = 0
for name, l in lens:
    show(name, stream[off:off + l]); off += l

# Same with PRF_HMAC_SHA2_384 and AES-GCM-16-128 (key+salt 20, no integ)
skeyseed384 = prf(384, ni + nr, gir)
lens = [("gcm_sk_d", 48), ("gcm_sk_ei", 20), ("gcm_sk_er", 20), ("gcm_sk_pi", 48), ("gcm_sk_pr", 48)]
stream = prf_plus(384, skeyseed384, ni + nr + spii + spir, sum(l for _, l in lens))
off = 0
for name, l in lens:
    show(name, stream[off:off + l]); off += l

# Rekey SKEYSEED (RFC 7296 §2.18): old PRF SHA2-256, SK_d(old) = sk_d above
sk_d_old = prf_plus(256, skeyseed, ni + nr + spii + spir, 32)
gir_new = bytes([0x44]) * 32
ni2, nr2 = bytes([0x55]) * 32, bytes([0x66]) * 32
show("rekey_skeyseed", prf(256, sk_d_old, gir_new + ni2 + nr2))

# Child SA KEYMAT (RFC 7296 §2.17), AES-CBC-128 + HMAC-SHA2-256-128, no PFS / PFS
show("child_keymat_nopfs", prf_plus(256, sk_d_old, ni2 + nr2, 2 * (16 + 32)))
show("child_keymat_pfs", prf_plus(256, sk_d_old, gir_new + ni2 + nr2, 2 * (16 + 32)))

# PSK AUTH (RFC 7296 §2.15)
psk = b"correct horse battery staple"
octets = b"RealMessage1" + bytes([0x77]) * 32 + prf(256, bytes([0x88]) * 32, bytes([2, 0, 0, 0]) + b"gw.example.com")
show("psk_signed_octets", octets)
show("psk_auth", prf(256, prf(256, psk, b"Key Pad for IKEv2"), octets))

# NAT-D (RFC 7296 §2.23): 192.0.2.1 port 500, 2001:db8::1 port 4500
show("natd_v4", hashlib.sha1(spii + spir + bytes([192, 0, 2, 1]) + (500).to_bytes(2, "big")).digest())
show("natd_v6", hashlib.sha1(spii + bytes(8) + bytes.fromhex("20010db8000000000000000000000001") + (4500).to_bytes(2, "big")).digest())

# RFC 4231 / RFC 4868 cross-check of the constants typed from the RFCs
show("rfc4231_tc1_256", prf(256, bytes([0x0b]) * 20, b"Hi There"))
show("rfc4231_tc2_384", prf(384, b"Jefe", b"what do ya want for nothing?"))
show("rfc4868_prf1_256", prf(256, bytes([0x0b]) * 32, b"Hi There"))
show("rfc4868_prf1_384", prf(384, bytes([0x0b]) * 48, b"Hi There"))
show("rfc4868_prf1_512", prf(512, bytes([0x0b]) * 64, b"Hi There"))
