// What the REST API reads from the engine at scale (pools with their
// leases, filtered and paged IKE SA listings) and configuration reload: new
// policy for new IKE SAs, established tunnels untouched (engine.h).
#include <algorithm>
#include <unordered_map>

#include "controlplane/ike/engine/engine_impl.h"

namespace segw::cp::ike {

std::vector<PoolInfo> Engine::Impl::pools() const {
  std::vector<PoolInfo> out;
  for (const auto& [name, pool] : pools_)
    out.push_back({name, pool.config().range, pool.family(), pool.lease_prefix_length(), pool.stats()});
  return out;
}

std::optional<LeasePage> Engine::Impl::pool_leases(std::string_view name, const LeaseQuery& query) const {
  auto it = pools_.find(name);
  if (it == pools_.end()) return std::nullopt;
  auto leases = it->second.leases();  // address order
  auto first = leases.begin();
  if (query.after)
    first = std::partition_point(leases.begin(), leases.end(),
                                 [&](const auto& entry) { return entry.second.address <= *query.after; });
  size_t take = std::min(query.limit, size_t(leases.end() - first));
  LeasePage page;
  if (take == 0) return page;
  // Lease owners are IKE SAs' lease_owner (kept across IKE rekeys): the live
  // (not rekeyed) IKE SA of each owner holds the lease. Only this page's
  // owners are looked for.
  std::unordered_map<uint64_t, const IkeSa*> holders;
  holders.reserve(take);
  for (auto entry = first; entry != first + ptrdiff_t(take); ++entry) holders.emplace(entry->first, nullptr);
  for (const auto& [id, sa] : sas_) {
    if (sa->rekeyed || sa->state == IkeSaState::kClosed) continue;
    if (auto holder = holders.find(sa->lease_owner); holder != holders.end()) holder->second = sa.get();
  }
  page.leases.reserve(take);
  for (auto entry = first; entry != first + ptrdiff_t(take); ++entry) {
    LeaseInfo info{entry->second.address, entry->second.prefix_length, 0, {}};
    if (const IkeSa* holder = holders.at(entry->first)) {
      info.ike_sa = holder->id;
      info.peer_id = holder->peer_id_text;
    }
    page.leases.push_back(std::move(info));
  }
  if (first + ptrdiff_t(take) != leases.end()) page.next_after = page.leases.back().address;
  return page;
}

IkeSaPage Engine::Impl::ike_sas(const IkeSaQuery& query) const {
  auto matches = [&query](const IkeSa& sa) {
    if (query.identity && sa.peer_id_text != *query.identity) return false;
    if (query.inner && !((sa.lease4 && sa.lease4->address == *query.inner) ||
                         (sa.lease6 && sa.lease6->address == *query.inner)))
      return false;
    if (query.public_address && sa.remote.address != *query.public_address) return false;
    return true;
  };
  std::vector<uint64_t> ids;
  IkeSaPage page;
  for (const auto& [id, sa] : sas_) {
    if (!matches(*sa)) continue;
    ++page.matched;
    if (id > query.after) ids.push_back(id);
  }
  size_t take = std::min(query.limit, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + ptrdiff_t(take), ids.end());
  for (size_t i = 0; i < take; ++i) page.sas.push_back(info_of(*sas_.at(ids[i])));
  if (take < ids.size() && take > 0) page.next_after = ids[take - 1];
  return page;
}

shared::Result<ReloadReport> Engine::Impl::reload(std::shared_ptr<const config::ControlPlaneConfig> next) {
  using shared::make_error;
  if (!next) return make_error("no configuration");
  if (!(next->daemon == config_->daemon))
    return make_error("the [controlplane] section changed: restart segw-controlplane to apply it "
                      "(transport, channel, engine limits, log level and API settings are fixed at start)");

  // 1. Pools. An unchanged pool stays as it is (same object: the profiles
  // and IKE SAs that point at it keep working); a changed one is built anew
  // and must take every current lease back at the same address.
  std::map<std::string, policy::AddressPool, std::less<>> rebuilt;
  size_t changed = 0;
  for (const auto& section : next->pools) {
    auto old = pools_.find(section.pool.name);
    if (old != pools_.end() && old->second.config() == section.pool) continue;
    auto pool = policy::AddressPool::create(section.pool);
    if (!pool) return make_error("pool " + section.pool.name + ": " + pool.error());
    if (old != pools_.end()) {
      ++changed;
      for (const auto& [owner, lease] : old->second.leases()) {
        auto again = pool->lease(owner, lease.address);
        if (!again || !(*again == lease))
          return make_error("pool " + section.pool.name + ": the lease of " + lease.address.to_string() +
                            " (in use) does not fit the new range, exclusions or lease length");
      }
    }
    rebuilt.emplace(section.pool.name, std::move(*pool));
  }
  for (const auto& entry : pools_) {
    const std::string& name = entry.first;
    bool kept = std::any_of(next->pools.begin(), next->pools.end(),
                            [&name](const config::PoolSection& s) { return s.pool.name == name; });
    if (!kept && entry.second.stats().in_use > 0)
      return make_error("pool " + name + " is gone from the configuration but " +
                        std::to_string(entry.second.stats().in_use) + " of its leases are in use");
  }
  auto staged_pool = [&](const std::string& name) -> policy::AddressPool* {
    if (auto it = rebuilt.find(name); it != rebuilt.end()) return &it->second;
    bool configured = std::any_of(next->pools.begin(), next->pools.end(),
                                  [&](const config::PoolSection& s) { return s.pool.name == name; });
    if (auto it = pools_.find(name); configured && it != pools_.end()) return &it->second;
    return nullptr;
  };

  // 2. Profiles, against the staged pools (their addresses do not change
  // when the map nodes move over below).
  std::vector<std::unique_ptr<RuntimeProfile>> profiles;
  for (const auto& section : next->profiles) {
    auto profile = build_profile(section, staged_pool);
    if (!profile) return make_error(profile.error());
    profiles.push_back(std::move(*profile));
  }
  if (profiles.empty()) return make_error("no profile");

  // 3. Commit: nothing below can fail.
  ReloadReport report;
  report.pools_rebuilt = changed;
  std::map<std::string, policy::AddressPool, std::less<>> pools;
  for (const auto& section : next->pools) {
    const std::string& name = section.pool.name;
    auto node = rebuilt.count(name) ? rebuilt.extract(name) : pools_.extract(name);
    pools.insert(std::move(node));
  }
  auto pool_in = [&pools](const std::string& name) -> policy::AddressPool* {
    auto it = pools.find(name);
    return it == pools.end() ? nullptr : &it->second;
  };
  auto profile_named_in = [&profiles](const std::string& name) -> RuntimeProfile* {
    for (auto& profile : profiles)
      if (profile->section->name == name) return profile.get();
    return nullptr;
  };
  // Old profiles still in use by an IKE SA whose profile name is gone are
  // retired (kept); their pools are re-found by name (a gone pool had no
  // lease, so they lose nothing).
  std::vector<std::unique_ptr<RuntimeProfile>> old_profiles = std::move(profiles_);
  for (auto& retired : retired_profiles_) old_profiles.push_back(std::move(retired));
  retired_profiles_.clear();
  std::unordered_map<RuntimeProfile*, bool> still_used;
  for (auto& [id, sa] : sas_) {
    if (sa->profile == nullptr) continue;
    if (RuntimeProfile* fresh = profile_named_in(sa->profile->section->name)) {
      sa->profile = fresh;
    } else {
      still_used[sa->profile] = true;
      ++report.ike_sas_on_retired_profiles;
    }
  }
  for (auto& profile : old_profiles) {
    if (!still_used.count(profile.get())) continue;
    auto pool_of = [&](policy::AddressPool* pool) { return pool ? pool_in(pool->name()) : nullptr; };
    profile->pool4 = pool_of(profile->pool4);
    profile->pool6 = pool_of(profile->pool6);
    retired_profiles_.push_back(std::move(profile));
  }
  old_profiles.clear();
  pools_ = std::move(pools);
  profiles_ = std::move(profiles);
  reloaded_configs_.push_back(next);
  config_ = next.get();

  report.profiles = profiles_.size();
  report.secrets = config_->secrets.size();
  report.pools = pools_.size();
  report.ike_sas = sas_.size();
  return report;
}

std::string to_string(const ReloadReport& report) {
  std::string text = std::to_string(report.profiles);
  text.append(" profile(s), ").append(std::to_string(report.pools)).append(" pool(s) (");
  text.append(std::to_string(report.pools_rebuilt)).append(" rebuilt), ").append(std::to_string(report.secrets));
  text.append(" secret(s); ").append(std::to_string(report.ike_sas)).append(" IKE SA(s) kept");
  return text;
}

std::vector<PoolInfo> Engine::pools() const { return impl_->pools(); }
IkeSaPage Engine::ike_sas(const IkeSaQuery& query) const { return impl_->ike_sas(query); }
std::optional<std::vector<LeaseInfo>> Engine::pool_leases(std::string_view name) const {
  auto page = impl_->pool_leases(name, LeaseQuery{});
  if (!page) return std::nullopt;
  return std::move(page->leases);
}
std::optional<LeasePage> Engine::pool_leases(std::string_view name, const LeaseQuery& query) const {
  return impl_->pool_leases(name, query);
}
shared::Result<ReloadReport> Engine::reload(std::shared_ptr<const config::ControlPlaneConfig> config) {
  return impl_->reload(std::move(config));
}

}  // namespace segw::cp::ike
