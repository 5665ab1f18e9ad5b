#include "proxy/core/cluster.hpp"

#include <cerrno>
#include <algorithm>
#include <chrono>

#include "proxy/balancer/hash_key.hpp"
#include "proxy/core/log.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"

namespace lbd::proxy {

EndpointLease::EndpointLease(Cluster* cluster, std::size_t index) : cluster_(cluster), index_(index) {
  ++cluster_->states_[index_].active;
  ++cluster_->active_total_;
}

EndpointLease& EndpointLease::operator=(EndpointLease&& o) noexcept {
  if (this != &o) {
    release();
    cluster_ = std::exchange(o.cluster_, nullptr);
    index_ = o.index_;
  }
  return *this;
}

void EndpointLease::release() {
  if (!cluster_) return;
  --cluster_->states_[index_].active;
  --cluster_->active_total_;
  cluster_ = nullptr;
}

Cluster::Cluster(const config::ClusterConfig& cfg, uint64_t seed, EndpointBook* book)
    : cfg_(cfg), book_(book), pool_(cfg_.keepalive, cfg_.endpoints.size()) {
  states_.resize(cfg_.endpoints.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    states_[i].weight = cfg_.endpoints[i].weight;
    states_[i].hash_id = balancer::hash_bytes(cfg_.endpoints[i].address.to_string());
    records_.push_back(book_->get(cfg_.name, cfg_.endpoints[i].address));
  }
  balancer_ = balancer::make_balancer(cfg_.balance, states_, seed);
  refresh_health();
  if (cfg_.tls) {
    // The loader checked the files on the config thread; what fails here is a file that changed
    // since, and then connects fail with a reason rather than going out in plaintext.
    tls::LoadReport report;
    tls_ = tls::ClientContext::load(cfg_.tls->client, report);
    for (const auto& p : report.errors) log_error("cluster {}: tls: {}", cfg_.name, p.message);
  }
}

Task<Result<tls::TlsStream>> Cluster::start_tls(std::size_t i, TcpStream stream, std::string* why) {
  if (!tls_) {
    *why = "the cluster's TLS settings could not be loaded (see the error log)";
    co_return errno_error(EINVAL);
  }
  // No SNI name configured: none is sent and the certificate must name the endpoint's IP.
  std::string name = cfg_.tls->sni.empty() ? address(i).host_string() : cfg_.tls->sni;
  auto made = tls::TlsStream::connect(std::move(stream), *tls_, std::move(name), address(i).to_string());
  if (!made) {
    *why = made.error().message();
    co_return made.error();
  }
  tls::TlsStream tls = std::move(*made);
  Result<void> hs = co_await tls.handshake(cfg_.timeouts.connect);
  if (!hs) {
    *why = tls.error_detail().empty() ? hs.error().message() : tls.error_detail();
    co_return hs.error();
  }
  co_return std::move(tls);
}

void Cluster::refresh_health() {
  const bool book_moved = book_->generation() != seen_generation_;
  if (!book_moved && next_unejection_ == Clock::time_point::max()) return;
  const auto now = Clock::now();
  if (!book_moved && now < next_unejection_) return;
  seen_generation_ = book_->generation();
  next_unejection_ = Clock::time_point::max();
  bool changed = false;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    EndpointRecord& r = *records_[i];
    const bool ejected = r.ejected_until > now;
    if (ejected) next_unejection_ = std::min(next_unejection_, r.ejected_until);
    const bool up = !r.down && !r.drained && !ejected;
    if (up != states_[i].up) {
      states_[i].up = up;
      changed = true;
      if (!up) pool_.close_idle(i);  // its pooled connections would not be picked again
    }
  }
  if (changed) balancer_->on_state_change();
}

void Cluster::record_success(std::size_t i) { records_[i]->consecutive_failures = 0; }

void Cluster::record_failure(std::size_t i, std::string_view why) {
  EndpointRecord& r = *records_[i];
  ++r.stats.failures;
  ++r.consecutive_failures;
  if (cfg_.outlier && r.consecutive_failures >= cfg_.outlier->consecutive_failures) maybe_eject(i, why);
}

void Cluster::record_response(std::size_t i, int status, double seconds) {
  EndpointStats& st = records_[i]->stats;
  st.count_response(status);
  st.count_response_time(seconds);
  if (status >= 500 && cfg_.outlier && cfg_.outlier->http_5xx)
    record_failure(i, "HTTP " + std::to_string(status));
  else
    record_success(i);
}

void Cluster::maybe_eject(std::size_t i, std::string_view why) {
  const auto now = Clock::now();
  EndpointRecord& r = *records_[i];
  if (r.ejected_until > now) return;  // ejected already (a request that started before)
  refresh_health();
  std::size_t others_up = 0;
  for (std::size_t j = 0; j < states_.size(); ++j)
    if (j != i && states_[j].up) ++others_up;
  if (others_up == 0) {
    log_debug("cluster {} endpoint {}: {} failures in a row, not ejected: it is the last one up", cfg_.name,
              address(i).to_string(), r.consecutive_failures);
    return;
  }
  const config::Outlier& o = *cfg_.outlier;
  // An endpoint that was last let back in more than max_ejection ago starts again from base.
  if (r.ejected_until != Clock::time_point{} && now - r.ejected_until > o.max_ejection) r.ejections_in_a_row = 0;
  Duration length = o.base_ejection;
  for (uint32_t k = 0; k < r.ejections_in_a_row && length < o.max_ejection; ++k) length *= 2;
  length = std::min(length, o.max_ejection);
  ++r.ejections_in_a_row;
  ++r.stats.ejections;
  r.ejected_until = now + length;
  r.consecutive_failures = 0;
  book_->changed();
  log_warn("cluster {} endpoint {} ejected for {}ms: {} failures in a row (last: {})", cfg_.name,
           address(i).to_string(), std::chrono::duration_cast<std::chrono::milliseconds>(length).count(),
           o.consecutive_failures, why);
  refresh_health();
}

balancer::PickContext Cluster::pick_context(const SocketAddress& client,
                                            const http::HeaderList* request_headers) const {
  balancer::PickContext ctx;
  if (cfg_.balance != balancer::BalanceKind::kHash) return ctx;
  switch (cfg_.hash_key.kind) {
    case config::HashKeyKind::kSourceIp:
      ctx.hash_key = balancer::hash_source_address(*client.data());
      break;
    case config::HashKeyKind::kHeader:
      if (request_headers) {
        if (auto v = request_headers->get(cfg_.hash_key.header_name)) ctx.hash_key = balancer::hash_bytes(*v);
      }
      break;
  }
  return ctx;
}

void Cluster::release_to_pool(Upstream up) {
  up.lease.release();
  pool_.put(up.endpoint, std::move(up.conn));
}

Task<std::variant<Upstream, ConnectError>> Cluster::connect(balancer::PickContext ctx, ListenerStats* stats,
                                                            PoolUse pool) {
  balancer::ExcludeSet tried;
  std::string failures;
  ConnectFailure last = ConnectFailure::kNoEndpoint;
  refresh_health();
  for (uint32_t attempt = 0; attempt <= cfg_.retries; ++attempt) {
    if (cfg_.max_connections != 0 && active_total_ >= cfg_.max_connections) {
      co_return ConnectError{ConnectFailure::kOverLimit,
                             "cluster " + cfg_.name + " is at max_connections (" +
                                 std::to_string(cfg_.max_connections) + ")"};
    }
    auto picked = balancer_->pick(ctx, tried);
    if (!picked) break;
    std::size_t i = *picked;
    tried.insert(i);
    EndpointLease lease(this, i);
    if (pool != PoolUse::kNever && pool_.idle_count() > 0) {
      if (auto idle = pool_.take(i, pool == PoolUse::kChecked)) {
        ++records_[i]->stats.requests;
        co_return Upstream{std::move(*idle), i, std::move(lease), true};
      }
    }
    auto stream = co_await TcpStream::connect(address(i), cfg_.timeouts.connect);
    if (stream) {
      // Once per connection, not per request: a pooled connection keeps the option.
      (void)stream->set_nodelay(true);
      if (!cfg_.tls) {
        ++records_[i]->stats.requests;
        co_return Upstream{UpstreamConn(std::move(*stream)), i, std::move(lease)};
      }
      std::string why;
      auto tls = co_await start_tls(i, std::move(*stream), &why);
      if (tls) {
        ++records_[i]->stats.requests;
        co_return Upstream{UpstreamConn(std::move(*tls)), i, std::move(lease)};
      }
      // A TLS failure is the endpoint's, like a refused connect: another endpoint is tried.
      std::string what = "TLS to " + address(i).to_string() + " for cluster " + cfg_.name + ": " + why;
      log_warn("{}", what);
      if (!failures.empty()) failures += "; ";
      failures += what;
      last = ConnectFailure::kTls;
      ++records_[i]->stats.connect_other;
      if (stats) ++stats->connect_other;
      record_failure(i, "TLS: " + why);
      continue;
    }

    int err = stream.error().value();
    const auto connect_ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeouts.connect).count();
    std::string what = "connect " + address(i).to_string() + " for cluster " + cfg_.name + ": " +
                       (err == ETIMEDOUT ? "timed out after " + std::to_string(connect_ms) + "ms"
                                         : stream.error().message());
    log_warn("{}", what);
    if (!failures.empty()) failures += "; ";
    failures += what;
    EndpointStats& est = records_[i]->stats;
    if (err == ETIMEDOUT) {
      last = ConnectFailure::kTimeout;
      ++est.connect_timeout;
      if (stats) ++stats->connect_timeout;
    } else if (err == ECONNREFUSED || err == ECONNRESET) {
      last = ConnectFailure::kRefused;
      ++est.connect_refused;
      if (stats) ++stats->connect_refused;
    } else {
      last = ConnectFailure::kOther;
      ++est.connect_other;
      if (stats) ++stats->connect_other;
    }
    record_failure(i, err == ETIMEDOUT ? "connect timed out" : "connect: " + stream.error().message());
  }
  if (failures.empty()) failures = "cluster " + cfg_.name + " has no endpoint available";
  co_return ConnectError{last, failures};
}

}  // namespace lbd::proxy
