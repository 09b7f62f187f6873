// IKEv2 wire constants (RFC 7296 section 3 and the IANA "IKEv2 Parameters"
// registry, plus RFC 4555, 7383, 7427 and 3GPP TS 29.139), each with a name.
#pragma once

#include <cstdint>
#include <string>

namespace segw::cp::ike {

// Fixed sizes (RFC 7296 3.1, 3.2).
inline constexpr size_t kIkeHeaderSize = 28;
inline constexpr size_t kGenericPayloadHeaderSize = 4;
inline constexpr uint8_t kIkeMajorVersion = 2;
inline constexpr uint8_t kIkeMinorVersion = 0;
// RFC 7296 3.2: the critical bit of the generic payload header.
inline constexpr uint8_t kPayloadCriticalBit = 0x80;

// Exchange types (RFC 7296 3.1).
enum class ExchangeType : uint8_t {
  kIkeSaInit = 34,
  kIkeAuth = 35,
  kCreateChildSa = 36,
  kInformational = 37,
};

// Payload types (RFC 7296 3.2, RFC 7383 2.5 for SKF).
enum class PayloadType : uint8_t {
  kNone = 0,             // "no next payload"
  kSecurityAssociation = 33,
  kKeyExchange = 34,
  kIdInitiator = 35,
  kIdResponder = 36,
  kCertificate = 37,
  kCertificateRequest = 38,
  kAuthentication = 39,
  kNonce = 40,
  kNotify = 41,
  kDelete = 42,
  kVendorId = 43,
  kTsInitiator = 44,
  kTsResponder = 45,
  kEncrypted = 46,       // SK
  kConfiguration = 47,   // CP
  kEap = 48,
  kEncryptedFragment = 53,  // SKF (RFC 7383 2.5)
};

// Header flags (RFC 7296 3.1).
inline constexpr uint8_t kFlagInitiator = 0x08;  // sent by the original initiator
inline constexpr uint8_t kFlagVersion = 0x10;    // sender could speak a higher major version
inline constexpr uint8_t kFlagResponse = 0x20;   // this message is a response

// Names the set flags, e.g. "I|R"; "none" when no flag is set.
std::string flags_to_string(uint8_t flags);

// Transform types (RFC 7296 3.3.2).
enum class TransformType : uint8_t {
  kEncryption = 1,
  kPrf = 2,
  kIntegrity = 3,
  kDiffieHellman = 4,
  kEsn = 5,
};

// Transform type 1 IDs.
enum class EncrId : uint16_t {
  kDes3 = 3,
  kNull = 11,
  kAesCbc = 12,
  kAesCtr = 13,
  kAesGcm8 = 18,
  kAesGcm12 = 19,
  kAesGcm16 = 20,
  kChacha20Poly1305 = 28,
};

// Transform type 2 IDs.
enum class PrfId : uint16_t {
  kHmacSha1 = 2,
  kHmacSha2_256 = 5,
  kHmacSha2_384 = 6,
  kHmacSha2_512 = 7,
};

// Transform type 3 IDs.
enum class IntegId : uint16_t {
  kNone = 0,
  kHmacSha1_96 = 2,
  kHmacSha2_256_128 = 12,
  kHmacSha2_384_192 = 13,
  kHmacSha2_512_256 = 14,
};

// Transform type 4 IDs.
enum class DhId : uint16_t {
  kNone = 0,
  kModp2048 = 14,
  kModp3072 = 15,
  kModp4096 = 16,
  kEcp256 = 19,
  kEcp384 = 20,
  kEcp521 = 21,
  kCurve25519 = 31,
};

// Length of the KE payload's key exchange data for a group, 0 when unknown
// (RFC 3526 for MODP, RFC 5903 7 for ECP: x || y, RFC 8031 for Curve25519).
size_t dh_public_value_length(DhId group);

// Transform type 5 IDs.
enum class EsnId : uint16_t {
  kNoEsn = 0,
  kEsn = 1,
};

// Transform attribute types (RFC 7296 3.3.5). Key Length is TV format.
enum class TransformAttributeType : uint16_t {
  kKeyLength = 14,
};
// RFC 7296 3.3.5: Attribute Format bit, set for TV (2-byte value inline).
inline constexpr uint16_t kAttributeFormatTv = 0x8000;

// Security protocol IDs (RFC 7296 3.3.1); 0 where no protocol applies (Notify).
enum class ProtocolId : uint8_t {
  kNone = 0,
  kIke = 1,
  kAh = 2,
  kEsp = 3,
};

// Identification types (RFC 7296 3.5).
enum class IdType : uint8_t {
  kIpv4Address = 1,
  kFqdn = 2,
  kRfc822Address = 3,
  kIpv6Address = 5,
  kDerAsn1Dn = 9,
  kDerAsn1Gn = 10,
  kKeyId = 11,
};

// Authentication methods (RFC 7296 3.8, RFC 4754, RFC 7427).
enum class AuthMethod : uint8_t {
  kRsaDigitalSignature = 1,
  kSharedKeyMic = 2,
  kDssDigitalSignature = 3,
  kEcdsaSha256P256 = 9,
  kEcdsaSha384P384 = 10,
  kEcdsaSha512P521 = 11,
  kDigitalSignature = 14,  // RFC 7427
};

// Certificate encodings (RFC 7296 3.6).
enum class CertEncoding : uint8_t {
  kX509Signature = 4,
  kHashAndUrlX509 = 12,
  kHashAndUrlX509Bundle = 13,
};
// RFC 7296 3.7: an X.509 CERTREQ carries SHA-1 hashes of CA public keys.
inline constexpr size_t kCaHashLength = 20;

// Notify message types (RFC 7296 3.10.1, RFC 4555 4, RFC 7383 2.3,
// RFC 7427 4). Values below 16384 are errors, the rest status.
enum class NotifyType : uint16_t {
  // Errors.
  kUnsupportedCriticalPayload = 1,
  kInvalidIkeSpi = 4,
  kInvalidMajorVersion = 5,
  kInvalidSyntax = 7,
  kInvalidMessageId = 9,
  kInvalidSpi = 11,
  kNoProposalChosen = 14,
  kInvalidKePayload = 17,
  kAuthenticationFailed = 24,
  kSinglePairRequired = 34,
  kNoAdditionalSas = 35,
  kInternalAddressFailure = 36,
  kFailedCpRequired = 37,
  kTsUnacceptable = 38,
  kInvalidSelectors = 39,
  kUnacceptableAddresses = 40,   // RFC 4555
  kUnexpectedNatDetected = 41,   // RFC 4555
  kTemporaryFailure = 43,
  kChildSaNotFound = 44,
  // Status.
  kInitialContact = 16384,
  kSetWindowSize = 16385,
  kAdditionalTsPossible = 16386,
  kIpcompSupported = 16387,
  kNatDetectionSourceIp = 16388,
  kNatDetectionDestinationIp = 16389,
  kCookie = 16390,
  kUseTransportMode = 16391,
  kHttpCertLookupSupported = 16392,
  kRekeySa = 16393,
  kEspTfcPaddingNotSupported = 16394,
  kNonFirstFragmentsAlso = 16395,
  kMobikeSupported = 16396,       // RFC 4555
  kAdditionalIp4Address = 16397,  // RFC 4555
  kAdditionalIp6Address = 16398,  // RFC 4555
  kNoAdditionalAddresses = 16399, // RFC 4555
  kUpdateSaAddresses = 16400,     // RFC 4555
  kCookie2 = 16401,               // RFC 4555
  kNoNatsAllowed = 16402,         // RFC 4555
  kIkev2FragmentationSupported = 16430,  // RFC 7383
  kSignatureHashAlgorithms = 16431,      // RFC 7427
};
inline constexpr uint16_t kFirstStatusNotify = 16384;
inline constexpr bool is_error_notify(NotifyType type) {
  return static_cast<uint16_t>(type) < kFirstStatusNotify;
}

// Hash algorithms of SIGNATURE_HASH_ALGORITHMS (RFC 7427 7, IANA).
enum class HashAlgorithm : uint16_t {
  kSha1 = 1,
  kSha2_256 = 2,
  kSha2_384 = 3,
  kSha2_512 = 4,
  kIdentity = 5,  // RFC 8420
};

// Configuration payload types (RFC 7296 3.15).
enum class CpType : uint8_t {
  kRequest = 1,
  kReply = 2,
  kSet = 3,
  kAck = 4,
};

// Configuration attribute types (RFC 7296 3.15.1; 23 from 3GPP TS 29.139).
enum class CpAttributeType : uint16_t {
  kInternalIp4Address = 1,
  kInternalIp4Netmask = 2,
  kInternalIp4Dns = 3,
  kInternalIp4Nbns = 4,
  kInternalAddressExpiry = 5,
  kInternalIp4Dhcp = 6,
  kApplicationVersion = 7,
  kInternalIp6Address = 8,
  kInternalIp6Dns = 10,
  kInternalIp6Dhcp = 12,
  kInternalIp4Subnet = 13,
  kSupportedAttributes = 14,
  kInternalIp6Subnet = 15,
  // 3GPP TS 29.139 / TS 24.302: the initiator's NAT-translated public IPv4
  // address (4 bytes) and UDP port (2 bytes) as the gateway sees them.
  kExternalSourceIp4NatInfo = 23,
};
// RFC 7296 3.15.1: the first bit of the attribute type is reserved.
inline constexpr uint16_t kCpAttributeTypeMask = 0x7fff;

// Traffic selector types (RFC 7296 3.13.1).
enum class TsType : uint8_t {
  kIpv4AddressRange = 7,
  kIpv6AddressRange = 8,
};

// Names; an unknown value prints as "unknown(N)".
std::string to_string(ExchangeType value);
std::string to_string(PayloadType value);
std::string to_string(TransformType value);
std::string to_string(EncrId value);
std::string to_string(PrfId value);
std::string to_string(IntegId value);
std::string to_string(DhId value);
std::string to_string(EsnId value);
std::string to_string(TransformAttributeType value);
std::string to_string(ProtocolId value);
std::string to_string(IdType value);
std::string to_string(AuthMethod value);
std::string to_string(CertEncoding value);
std::string to_string(NotifyType value);
std::string to_string(HashAlgorithm value);
std::string to_string(CpType value);
std::string to_string(CpAttributeType value);
std::string to_string(TsType value);
// A transform ID named in the table of its transform type.
std::string transform_id_to_string(TransformType type, uint16_t id);

// Whether the codec knows how to decode this payload type.
bool is_known_payload_type(PayloadType type);

}  // namespace segw::cp::ike
