// SecureBytes: a byte vector for key material, wiped with OPENSSL_cleanse
// whenever its storage is freed, reallocated or shrunk.
#pragma once

#include <openssl/crypto.h>

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <vector>

namespace segw::cp::crypto {

// Allocator that wipes every buffer before giving it back, so a vector's
// reallocation (growth) never leaves a stale copy of a key in freed heap.
template <typename T>
struct CleansingAllocator {
  using value_type = T;
  CleansingAllocator() noexcept = default;
  template <typename U>
  CleansingAllocator(const CleansingAllocator<U>&) noexcept {}  // NOLINT: rebind
  // Through std::allocator, which GCC 12 reasons about: with a bare
  // ::operator new it reports false stringop-overflows in vector growth at -O3.
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) noexcept {
    OPENSSL_cleanse(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const CleansingAllocator<U>&) const noexcept { return true; }
};

// Owns secret bytes (keys, shared secrets, SKEYSEED, PSKs). Copyable (each
// copy is wiped in turn); comparisons are constant time. Any thread, no
// internal synchronisation.
class SecureBytes {
 public:
  using Storage = std::vector<uint8_t, CleansingAllocator<uint8_t>>;

  SecureBytes() = default;
  explicit SecureBytes(size_t size) : bytes_(size, 0) {}
  explicit SecureBytes(std::span<const uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}
  SecureBytes(std::initializer_list<uint8_t> bytes) : bytes_(bytes) {}
  SecureBytes(const SecureBytes&) = default;
  SecureBytes& operator=(const SecureBytes&) = default;
  // A moved-from object is left empty (vector move), nothing to wipe there.
  SecureBytes(SecureBytes&&) noexcept = default;
  SecureBytes& operator=(SecureBytes&&) noexcept = default;
  ~SecureBytes() = default;  // the allocator wipes the buffer

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  uint8_t& operator[](size_t i) { return bytes_[i]; }
  const uint8_t& operator[](size_t i) const { return bytes_[i]; }
  auto begin() { return bytes_.begin(); }
  auto end() { return bytes_.end(); }
  auto begin() const { return bytes_.begin(); }
  auto end() const { return bytes_.end(); }

  std::span<const uint8_t> span() const { return {bytes_.data(), bytes_.size()}; }
  std::span<uint8_t> mutable_span() { return {bytes_.data(), bytes_.size()}; }
  operator std::span<const uint8_t>() const { return span(); }  // NOLINT: implicit view

  // Shrinking wipes the bytes cut off (they stay in the capacity otherwise).
  void resize(size_t size) {
    if (size < bytes_.size()) OPENSSL_cleanse(bytes_.data() + size, bytes_.size() - size);
    bytes_.resize(size, 0);
  }
  void clear() { resize(0); }
  void reserve(size_t capacity) { bytes_.reserve(capacity); }
  // resize + memcpy rather than vector::insert: GCC 12 at -O3 reports a
  // false stringop-overflow inside insert with this allocator.
  void append(std::span<const uint8_t> more) {
    if (more.empty()) return;
    size_t old_size = bytes_.size();
    bytes_.resize(old_size + more.size());
    std::memcpy(bytes_.data() + old_size, more.data(), more.size());
  }
  void push_back(uint8_t byte) { bytes_.push_back(byte); }

  // First `length` bytes starting at `offset` (precondition: in range).
  SecureBytes slice(size_t offset, size_t length) const {
    return SecureBytes(span().subspan(offset, length));
  }

  // Constant time in the length of the shorter operand.
  friend bool operator==(const SecureBytes& a, const SecureBytes& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
  }

 private:
  Storage bytes_;
};

// Constant-time equality of two byte views (false if lengths differ).
inline bool equal_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace segw::cp::crypto
