// SPDX-License-Identifier: MIT
// san_model.cpp: the harness around the Verilated san_nic_top. It owns the clock, drives BAR0 as
// a bus master would (one real AXI4-Lite handshake at a time), serves the DMA ports from host
// memory through a PCIe-like model (read latency, tags, one beat per cycle, posted writes) with a
// guard, collects MSI-X requests, and carries Ethernet frames: to and from Go, beat by beat over
// a link to another NIC on the same clock (a fabric), where seeded faults may drop, corrupt,
// duplicate or reorder them, or whole to every other NIC on a shared segment (a hub).

#include "san_model.h"

#include <time.h>

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "Vsan_nic_top.h"
#include "Vsan_nic_top___024root.h"
#include "verilated.h"

#ifndef SAN_CLK_KHZ
#error "build with -DSAN_CLK_KHZ=<the model's CLK_KHZ> (the Makefile does)"
#endif

namespace {

constexpr int kBytes = 8; // DATA_WIDTH / 8; the harness drives a 64-bit build

// Cycles per 1.024 us tick of the shell's time in deterministic mode: the time a board's shell
// would count at the build clock (at least 1).
constexpr uint64_t kTickCyc = SAN_CLK_KHZ * 1024ull / 1000000ull > 0 ? SAN_CLK_KHZ * 1024ull / 1000000ull : 1;

uint64_t mono_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// One beat on an AXI-Stream link port.
struct Beat {
  uint64_t data;
  uint8_t keep;
  bool last;
  bool user;
  uint64_t time; // first cycle it may be presented
};

// A DMA read in flight: its data starts at `time` and streams in request order.
struct Read {
  uint64_t addr;
  uint32_t len;
  uint32_t tag;
  uint64_t time;
  uint32_t off;
  bool fault;
};

struct Write {
  uint64_t addr;
  uint32_t len;
  uint32_t tag;
  uint32_t off;
  bool fault;
};

struct Done {
  uint32_t tag;
  bool error;
  uint64_t time;
};

struct Frame {
  std::vector<uint8_t> bytes;
  uint64_t first, last;
};

// Handshakes and values sampled before the rising edge, for the MMIO calls.
struct Sampled {
  bool aw, w, b, ar, r;
  uint32_t rdata;
  int resp_b, resp_r;
};

// splitmix64: the link faults' generator. Any seed, 0 included, starts a full-period stream.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; } // [0, 1)
};

// The kinds of link fault, in the order a frame is judged.
enum Kind { kDrop, kCorrupt, kDuplicate, kReorder, kKinds };

// Link is one direction of a link: the faults applied to what a model transmits to its peer
// (see san_fabric_set_faults).
struct Link {
  san_link_fault fault[kKinds] = {};
  uint32_t hold = 4096;
  bool faulty = false; // a probability is above 0: new frames are stored and forwarded
  SplitMix rng{0};
  uint32_t run[kKinds] = {}; // frames left in a run, after the one that started it
  san_link_counts counts{};

  bool in_frame = false; // between a frame's first and last beat
  bool saf = false;      // the frame in progress is stored and forwarded
  std::vector<uint8_t> cur;

  // A reordered frame waiting for the next one.
  bool held = false;
  std::vector<uint8_t> held_bytes;
  bool held_user = false;
  int held_copies = 1;
  uint64_t held_due = 0;      // first cycle it may reach the peer
  uint64_t held_deadline = 0; // delivered anyway from this cycle if no frame has started
};

// xorshift64*: the stall patterns, seeded so runs repeat.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint32_t pct() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<uint32_t>((s * 2685821657736338717ull) >> 32) % 100;
  }
};

// A clock: a lone model's own, or a fabric's (every model in it).
struct Clock {
  uint64_t cycles = 0;
  bool realtime = false;
  uint64_t rt_base = 0;  // real time: the wall time (CLOCK_MONOTONIC ns) of shell tick 0
  uint64_t probe_at = 0; // the cycle of the next quiescence probe
  uint64_t backoff = 16; // cycles from a failed probe to the next
  uint64_t skipped = 0;  // cycles moved over while quiescent
  bool skip = true;      // quiescence is looked for (off: every cycle runs, for comparisons)
};

}  // namespace

struct san_model {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vsan_nic_top> top;
  san_model_config cfg{};
  Rng rng{1};
  san_fabric *fabric = nullptr; // owner of the clock, or null when the model runs alone
  Clock own;
  std::deque<uint16_t> msix;

  // Host memory and the guard: mapped ranges by start.
  std::map<uint64_t, uint64_t> mapped;
  uint64_t faults = 0;
  san_dma_fault first_fault{};

  std::deque<Read> reads;
  bool wr_active = false;
  Write wr{};
  std::deque<Done> dones;

  // Link: beats waiting to enter the receive port, from the peer and from Go.
  san_model *peer = nullptr;
  uint32_t latency = 0;
  std::deque<Beat> rx_link, rx_inject;
  int rx_src = 0; // 0 idle (between frames), 1 link, 2 inject
  bool capture = false;
  Frame tx_cur;
  bool tx_started = false;
  std::deque<Frame> tx_frames;
  Link out; // faults of the direction to peer
  bool capture_rx = false; // keep what the receive port takes from the link
  Frame rx_cur;
  bool rx_started = false;
  std::deque<Frame> rx_frames;

  Sampled hs{};
  uint64_t last_write_cycle = 0;

  // Time: the shell's tick count, from the cycles since reset was released (deterministic) or
  // from the wall clock (real time).
  int64_t tick_from = 0; // the clock's cycle in which reset was last released
  uint64_t tick64 = 0;   // the shell tick it last saw (s_time_tick is its low 32 bits)
  bool hold_time = false; // real time: the coming cycle sees the last cycle's time (a probe)
  // The state before the last quiescence probe.
  std::vector<uint8_t> snap;
  // Shared segment: the one the model is on (instead of a link), and the frame it is sending.
  san_segment *segment = nullptr;
  std::vector<uint8_t> seg_cur;
};

// A shared segment (see san_fabric_segment): its members and latency.
struct san_segment {
  san_fabric *fabric;
  uint32_t latency;
  std::vector<san_model *> members;
};

struct san_fabric {
  std::vector<san_model *> models;
  std::vector<std::unique_ptr<san_segment>> segments;
  Clock clk;
};

namespace {

Clock &clock_of(san_model *m) { return m->fabric ? m->fabric->clk : m->own; }
const Clock &clock_of(const san_model *m) { return m->fabric ? m->fabric->clk : m->own; }
uint64_t now(const san_model *m) { return clock_of(m).cycles; }

// The shell's time for the coming cycle: never back, and in real time never ahead of the wall.
uint32_t shell_tick(san_model *m) {
  uint64_t t;
  const Clock &k = clock_of(m);
  if (k.realtime && m->hold_time) {
    t = m->tick64;
  } else if (k.realtime) {
    t = (mono_ns() - k.rt_base) >> 10;
  } else {
    int64_t c = static_cast<int64_t>(now(m)) - m->tick_from;
    t = c > 0 ? static_cast<uint64_t>(c) / kTickCyc : 0;
  }
  if (t > m->tick64) m->tick64 = t;
  return static_cast<uint32_t>(m->tick64);
}

bool guard_ok(const san_model *m, uint64_t addr, uint64_t len) {
  if (len == 0) return true;
  auto it = m->mapped.upper_bound(addr);
  if (it == m->mapped.begin()) return false;
  --it;
  return addr >= it->first && addr + len <= it->first + it->second && addr + len > addr;
}

void record_fault(san_model *m, uint64_t addr, uint64_t len, bool write) {
  if (m->faults++ == 0) m->first_fault = san_dma_fault{addr, len, now(m), write ? uint8_t(1) : uint8_t(0)};
}

uint8_t *host(san_model *m, uint64_t addr) { return m->cfg.host_mem + (addr - m->cfg.host_iova); }

void flush(san_model *m) {
  m->msix.clear();
  m->reads.clear();
  m->wr_active = false;
  m->dones.clear();
  m->rx_link.clear();
  m->rx_inject.clear();
  m->rx_src = 0;
  m->tx_started = false;
  m->tx_cur.bytes.clear();
  m->rx_started = false;
  m->rx_cur.bytes.clear();
  m->seg_cur.clear(); // a frame half sent on a segment is lost
  // Frames in flight from this NIC are lost, and so is one held on the way to it; one the peer
  // is still storing arrives, as the tail of a cut-through frame does.
  m->out.in_frame = false;
  m->out.cur.clear();
  m->out.held = false;
  m->out.held_bytes.clear();
  if (m->peer != nullptr) {
    m->peer->out.held = false;
    m->peer->out.held_bytes.clear();
  }
}

// append adds the bytes of a beat's enabled lanes to v.
void append(std::vector<uint8_t> &v, uint64_t data, uint8_t keep) {
  for (int i = 0; i < kBytes; i++) {
    if (keep >> i & 1) v.push_back(static_cast<uint8_t>(data >> (8 * i)));
  }
}

// queue_frame queues a stored frame for m's receive port from the link side as full beats from
// lane 0, presentable from cycle due.
void queue_frame(san_model *m, const std::vector<uint8_t> &bytes, bool user, uint64_t due) {
  uint32_t len = static_cast<uint32_t>(bytes.size());
  uint32_t off = 0;
  do {
    uint32_t n = len - off < kBytes ? len - off : kBytes;
    uint64_t d = 0;
    if (n > 0) std::memcpy(&d, bytes.data() + off, n);
    off += n;
    bool last = off == len;
    m->rx_link.push_back(Beat{d, static_cast<uint8_t>((1u << n) - 1), last, last && user, due});
  } while (off < len);
}

// deliver queues copies of a stored frame for the peer's receive port, presentable from cycle
// due.
void deliver(san_model *m, const std::vector<uint8_t> &bytes, bool user, int copies, uint64_t due) {
  Link &l = m->out;
  for (int k = 0; k < copies; k++) {
    l.counts.delivered++;
    if (m->peer != nullptr) queue_frame(m->peer, bytes, user, due);
  }
}

// erase removes m from v, where it is at most once.
void erase(std::vector<san_model *> &v, const san_model *m) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (*it == m) {
      v.erase(it);
      return;
    }
  }
}

// segment_send stores a beat m transmitted in cycle c on its segment; with the frame's last
// beat the frame goes to every other member, presentable latency + 1 cycles later.
void segment_send(san_model *m, const Beat &b, uint64_t c) {
  append(m->seg_cur, b.data, b.keep);
  if (!b.last) return;
  for (san_model *x : m->segment->members) {
    if (x != m) queue_frame(x, m->seg_cur, b.user, c + 1 + m->segment->latency);
  }
  m->seg_cur.clear();
}

// release delivers the held frame, if any, right behind what has been queued, from cycle due.
void release(san_model *m, uint64_t due) {
  Link &l = m->out;
  if (!l.held) return;
  l.held = false;
  deliver(m, l.held_bytes, l.held_user, l.held_copies, due > l.held_due ? due : l.held_due);
  l.held_bytes.clear();
}

// judge applies the faults to the stored frame whose last beat was sent in cycle c.
void judge(san_model *m, bool user, uint64_t c) {
  Link &l = m->out;
  l.counts.frames++;
  double u[kKinds];
  for (double &x : u) x = l.rng.unit();
  uint64_t r = l.rng.next();
  // fires says whether kind k applies: a run in progress always counts the frame off, and
  // only an eligible frame starts a run.
  auto fires = [&](int k, bool eligible) {
    if (l.run[k] > 0) {
      l.run[k]--;
      return eligible;
    }
    if (!eligible || !(u[k] < l.fault[k].p)) return false;
    l.run[k] = (l.fault[k].burst ? l.fault[k].burst : 1) - 1;
    return true;
  };
  bool held_before = l.held;
  bool drop = fires(kDrop, true);
  bool corrupt = fires(kCorrupt, !drop);
  bool dup = fires(kDuplicate, !drop);
  bool reorder = fires(kReorder, !drop && !held_before);
  uint64_t due = c + 1 + m->latency;
  if (drop) {
    l.counts.dropped++;
  } else {
    if (corrupt) {
      uint32_t off, width;
      if (san_link_corrupt(l.cur.data(), static_cast<uint32_t>(l.cur.size()), r, &off, &width) > 0) {
        l.counts.corrupted++;
      } else {
        l.counts.uncorruptible++;
      }
    }
    int copies = dup ? 2 : 1;
    if (dup) l.counts.duplicated++;
    if (reorder) {
      l.counts.reordered++;
      l.held = true;
      l.held_bytes.swap(l.cur);
      l.held_user = user;
      l.held_copies = copies;
      l.held_due = due;
      l.held_deadline = c + l.hold;
    } else {
      deliver(m, l.cur, user, copies, due);
    }
  }
  l.cur.clear();
  if (held_before) release(m, due);
}

// link_send carries a beat m transmitted in cycle c towards its peer: at once when its frame is
// cut-through, else into the store until the frame's last beat.
void link_send(san_model *m, const Beat &b, uint64_t c) {
  Link &l = m->out;
  if (!l.in_frame) {
    l.in_frame = true;
    l.saf = l.faulty;
  }
  if (l.saf) {
    append(l.cur, b.data, b.keep);
  } else {
    Beat x = b;
    x.time = c + 1 + m->latency;
    m->peer->rx_link.push_back(x);
  }
  if (!b.last) return;
  l.in_frame = false;
  if (l.saf) {
    judge(m, b.user, c);
  } else {
    l.counts.frames++;
    l.counts.delivered++;
    release(m, c + 1 + m->latency);
  }
}

void idle_bus(Vsan_nic_top *t) {
  t->s_axil_awvalid = 0;
  t->s_axil_wvalid = 0;
  t->s_axil_bready = 0;
  t->s_axil_arvalid = 0;
  t->s_axil_rready = 0;
  t->s_axil_awprot = 0;
  t->s_axil_arprot = 0;
}

// drive sets the host's and the MAC's inputs for this cycle from the harness state.
void drive(san_model *m) {
  Vsan_nic_top *t = m->top.get();
  uint64_t c = now(m);
  t->s_time_tick = shell_tick(m);
  uint32_t tags = m->cfg.dma_rd_tags ? m->cfg.dma_rd_tags : 256;
  bool dma_stall = m->cfg.dma_stall_pct && m->rng.pct() < m->cfg.dma_stall_pct;

  t->m_dma_rd_req_ready = m->reads.size() < tags;
  t->s_axis_dma_rd_tvalid = 0;
  if (!m->reads.empty() && m->reads.front().time <= c && !dma_stall) {
    const Read &r = m->reads.front();
    uint32_t n = r.len - r.off < kBytes ? r.len - r.off : kBytes;
    uint64_t d = 0;
    if (!r.fault) std::memcpy(&d, host(m, r.addr + r.off), n);
    t->s_axis_dma_rd_tdata = d;
    t->s_axis_dma_rd_tkeep = static_cast<uint8_t>((1u << n) - 1);
    t->s_axis_dma_rd_tlast = r.off + n == r.len;
    t->s_axis_dma_rd_tid = r.tag;
    t->s_axis_dma_rd_tuser = r.fault;
    t->s_axis_dma_rd_tvalid = 1;
  }

  t->m_dma_wr_req_ready = !m->wr_active;
  t->m_axis_dma_wr_tready = m->wr_active && !dma_stall;
  t->s_dma_wr_done_valid = 0;
  if (!m->dones.empty() && m->dones.front().time <= c) {
    t->s_dma_wr_done_valid = 1;
    t->s_dma_wr_done_tag = m->dones.front().tag;
    t->s_dma_wr_done_error = m->dones.front().error;
  }

  t->m_msix_ready = 1;
  t->m_axis_tx_tready = !(m->cfg.link_stall_pct && m->rng.pct() < m->cfg.link_stall_pct);

  // Receive: whole frames from one source at a time; the link first at a frame boundary.
  t->s_axis_rx_tvalid = 0;
  if (m->rx_src == 0) {
    if (!m->rx_link.empty() && m->rx_link.front().time <= c) {
      m->rx_src = 1;
    } else if (!m->rx_inject.empty()) {
      m->rx_src = 2;
    }
  }
  std::deque<Beat> *q = m->rx_src == 1 ? &m->rx_link : m->rx_src == 2 ? &m->rx_inject : nullptr;
  if (q != nullptr && !q->empty() && q->front().time <= c) {
    const Beat &b = q->front();
    t->s_axis_rx_tdata = b.data;
    t->s_axis_rx_tkeep = b.keep;
    t->s_axis_rx_tlast = b.last;
    t->s_axis_rx_tuser = b.user;
    t->s_axis_rx_tvalid = 1;
  }
}

// sample records what happens at the coming rising edge (inputs settled, clk low).
void sample(san_model *m) {
  Vsan_nic_top *t = m->top.get();
  uint64_t c = now(m);
  Sampled &hs = m->hs;
  hs.aw = t->s_axil_awvalid && t->s_axil_awready;
  hs.w = t->s_axil_wvalid && t->s_axil_wready;
  hs.b = t->s_axil_bvalid && t->s_axil_bready;
  hs.ar = t->s_axil_arvalid && t->s_axil_arready;
  hs.r = t->s_axil_rvalid && t->s_axil_rready;
  hs.rdata = t->s_axil_rdata;
  hs.resp_b = t->s_axil_bresp;
  hs.resp_r = t->s_axil_rresp;
  if (hs.w) m->last_write_cycle = c;

  if (t->m_msix_valid && t->m_msix_ready) m->msix.push_back(t->m_msix_vector);

  if (t->m_dma_rd_req_valid && t->m_dma_rd_req_ready) {
    uint64_t a = t->m_dma_rd_req_addr;
    uint32_t len = t->m_dma_rd_req_len;
    bool ok = len > 0 && guard_ok(m, a, len);
    if (!ok) record_fault(m, a, len, false);
    if (len > 0) m->reads.push_back(Read{a, len, t->m_dma_rd_req_tag, c + 1 + m->cfg.dma_rd_latency, 0, !ok});
  }
  if (t->s_axis_dma_rd_tvalid && t->s_axis_dma_rd_tready) {
    Read &r = m->reads.front();
    r.off += r.len - r.off < kBytes ? r.len - r.off : kBytes;
    if (r.off == r.len) m->reads.pop_front();
  }

  if (t->s_dma_wr_done_valid) m->dones.pop_front();
  if (t->m_dma_wr_req_valid && t->m_dma_wr_req_ready) {
    uint64_t a = t->m_dma_wr_req_addr;
    uint32_t len = t->m_dma_wr_req_len;
    bool ok = len > 0 && guard_ok(m, a, len);
    if (!ok) record_fault(m, a, len, true);
    m->wr = Write{a, len, t->m_dma_wr_req_tag, 0, !ok};
    m->wr_active = true;
  }
  // A request and the first data beat may be taken in one cycle only when the beat belongs to
  // an earlier request; the ready above holds data back until its request has been taken.
  else if (t->m_axis_dma_wr_tvalid && t->m_axis_dma_wr_tready) {
    Write &w = m->wr;
    uint8_t keep = t->m_axis_dma_wr_tkeep;
    uint64_t d = t->m_axis_dma_wr_tdata;
    for (int i = 0; i < kBytes; i++) {
      if (!(keep >> i & 1)) continue;
      if (w.off >= w.len) {
        // More bytes than requested: a protocol error, guarded like an outside access.
        if (!w.fault) record_fault(m, w.addr + w.off, 1, true);
        w.fault = true;
        continue;
      }
      if (!w.fault) *host(m, w.addr + w.off) = static_cast<uint8_t>(d >> (8 * i));
      w.off++;
    }
    if (t->m_axis_dma_wr_tlast) {
      if (w.off != w.len && !w.fault) {
        record_fault(m, w.addr + w.off, w.len - w.off, true);
        w.fault = true;
      }
      m->dones.push_back(Done{w.tag, w.fault, c + 1 + m->cfg.dma_wr_latency});
      m->wr_active = false;
    }
  }

  if (t->m_axis_tx_tvalid && t->m_axis_tx_tready) {
    Beat b{t->m_axis_tx_tdata, t->m_axis_tx_tkeep, t->m_axis_tx_tlast != 0,
           t->m_axis_tx_tuser != 0, 0};
    if (m->peer != nullptr) link_send(m, b, c);
    if (m->segment != nullptr) segment_send(m, b, c);
    if ((m->peer == nullptr && m->segment == nullptr) || m->capture) {
      if (!m->tx_started) {
        m->tx_cur.bytes.clear();
        m->tx_cur.first = c;
        m->tx_started = true;
      }
      append(m->tx_cur.bytes, b.data, b.keep);
      if (b.last) {
        m->tx_cur.last = c;
        m->tx_started = false;
        if (!b.user) m->tx_frames.push_back(std::move(m->tx_cur));
        m->tx_cur = Frame{};
      }
    }
  }
  // A held frame no next frame has started behind goes on its own once its time is up.
  Link &l = m->out;
  if (l.held && !l.in_frame && c >= l.held_deadline) release(m, c + 1);

  if (t->s_axis_rx_tvalid && t->s_axis_rx_tready) {
    std::deque<Beat> &q = m->rx_src == 1 ? m->rx_link : m->rx_inject;
    const Beat &b = q.front();
    if (m->rx_src == 1 && m->capture_rx) {
      if (!m->rx_started) {
        m->rx_cur.bytes.clear();
        m->rx_cur.first = c;
        m->rx_started = true;
      }
      append(m->rx_cur.bytes, b.data, b.keep);
      if (b.last) {
        m->rx_cur.last = c;
        m->rx_started = false;
        if (!b.user) m->rx_frames.push_back(std::move(m->rx_cur));
        m->rx_cur = Frame{};
      }
    }
    bool last = b.last;
    q.pop_front();
    if (last) m->rx_src = 0;
  }
}

// pop takes the oldest frame of q into buf: its length, 0 when q is empty, -1 when it does not
// fit (it stays).
int pop(std::deque<Frame> &q, uint8_t *buf, uint32_t cap, uint64_t *first_cycle,
        uint64_t *last_cycle) {
  if (q.empty()) return 0;
  Frame &f = q.front();
  if (f.bytes.size() > cap) return -1;
  std::memcpy(buf, f.bytes.data(), f.bytes.size());
  *first_cycle = f.first;
  *last_cycle = f.last;
  int n = static_cast<int>(f.bytes.size());
  q.pop_front();
  return n;
}

void edge(san_model *m) {
  Vsan_nic_top *t = m->top.get();
  t->clk = 1;
  t->eval();
  m->ctx->timeInc(1);
}

void settle(san_model *m) {
  Vsan_nic_top *t = m->top.get();
  t->clk = 0;
  t->eval();
  m->ctx->timeInc(1);
}

// tick runs one cycle of the clock m runs on: its fabric's (every model in it) or its own.
void tick(san_model *m) {
  if (m->fabric == nullptr) {
    drive(m);
    settle(m);
    sample(m);
    edge(m);
    m->own.cycles++;
    return;
  }
  san_fabric *f = m->fabric;
  for (san_model *x : f->models) {
    drive(x);
    settle(x);
    sample(x);
  }
  for (san_model *x : f->models) edge(x);
  f->clk.cycles++;
}

// --- quiescence and time skips ---------------------------------------------------------------------

std::vector<san_model *> models_of(san_model *m) {
  if (m->fabric == nullptr) return {m};
  return m->fabric->models;
}

// quiet says that nothing outside the RTL is under way for m (no DMA, no frame on its ports or
// its link, no stall pattern drawing numbers) and that its timer scans are parked.
bool quiet(const san_model *m) {
  const Vsan_nic_top *t = m->top.get();
  return t->m_timers_parked && !t->rst && m->reads.empty() && !m->wr_active && m->dones.empty() &&
         m->rx_link.empty() && m->rx_inject.empty() && m->rx_src == 0 && !m->out.in_frame &&
         !m->out.held && !m->tx_started && m->seg_cur.empty() && !t->m_axis_tx_tvalid &&
         !t->m_dma_rd_req_valid &&
         !t->m_dma_wr_req_valid && !t->m_msix_valid && m->cfg.dma_stall_pct == 0 &&
         m->cfg.link_stall_pct == 0;
}

// The free-running cycle counter of the CSR block: the one register of an idle NIC that moves.
uint64_t &cycle_reg(san_model *m) { return m->top->rootp->san_nic_top__DOT__csr_inst__DOT__cycle_reg; }

size_t cycle_reg_off(san_model *m) {
  return reinterpret_cast<const uint8_t *>(&cycle_reg(m)) -
         reinterpret_cast<const uint8_t *>(m->top->rootp);
}

// probe runs one cycle of m's clock and says whether it changed the state of no model on it: then
// the clock is quiescent, and with the same inputs every later cycle changes nothing either
// (the model is a function of its state and inputs), except where the shell's time reaches a
// deadline the NIC announced (m_wake_tick).
bool probe(san_model *m, const std::vector<san_model *> &ms) {
  constexpr size_t kRoot = sizeof(Vsan_nic_top___024root);
  for (san_model *x : ms) {
    x->snap.resize(kRoot);
    std::memcpy(x->snap.data(), x->top->rootp, kRoot);
    // A real-time clock's time moves in every cycle the model runs: the probe cycle sees the
    // time of the one before, so that only the NIC's own state can differ (it lags the wall by
    // that cycle, never runs ahead of it). A deterministic cycle sees its own time, exactly.
    x->hold_time = true;
  }
  tick(m);
  for (san_model *x : ms) x->hold_time = false;
  bool same = true;
  for (san_model *x : ms) {
    uint64_t c = cycle_reg(x);
    std::memcpy(x->snap.data() + cycle_reg_off(x), &c, sizeof c);
    same = same && quiet(x) && std::memcmp(x->snap.data(), x->top->rootp, kRoot) == 0;
  }
  return same;
}

// wake_cycle is the first cycle of the deterministic clock at which the shell's time reaches the
// earliest deadline any model on it announced, or UINT64_MAX.
uint64_t wake_cycle(const std::vector<san_model *> &ms) {
  uint64_t best = UINT64_MAX;
  for (san_model *x : ms) {
    const Vsan_nic_top *t = x->top.get();
    if (!t->m_wake_valid) continue;
    int32_t delta = static_cast<int32_t>(t->m_wake_tick - static_cast<uint32_t>(x->tick64));
    uint64_t at = delta <= 0 ? now(x) : static_cast<uint64_t>(x->tick_from + static_cast<int64_t>((x->tick64 + delta) * kTickCyc));
    if (at < best) best = at;
  }
  return best;
}

// wake_ns is how long from now, on the wall clock, until the earliest deadline any model on a
// real-time clock announced: -1 when none.
int64_t wake_ns(const std::vector<san_model *> &ms) {
  int64_t best = -1;
  for (san_model *x : ms) {
    const Vsan_nic_top *t = x->top.get();
    if (!t->m_wake_valid) continue;
    int32_t delta = static_cast<int32_t>(t->m_wake_tick - static_cast<uint32_t>(x->tick64));
    int64_t d = delta <= 0 ? 0 : static_cast<int64_t>(delta) * 1024;
    if (best < 0 || d < best) best = d;
  }
  return best;
}

// skip moves m's deterministic clock on by n cycles that would change nothing.
void skip(san_model *m, const std::vector<san_model *> &ms, uint64_t n) {
  Clock &k = clock_of(m);
  k.cycles += n;
  k.skipped += n;
  for (san_model *x : ms) cycle_reg(x) += n;
}

// advance runs m's clock for up to n cycles, and at most res->budget of them one by one (0: no
// limit), moving over quiescent stretches at once (exactly: see probe). It stops early after a cycle in which a model raised an MSI-X request (stop_irq),
// or when the clock is quiescent with nothing due (deterministic: no deadline; real time: none
// before the wall clock reaches it). It returns the cycles run or moved over.
uint64_t advance(san_model *m, uint64_t n, san_run_result *res) {
  Clock &k = clock_of(m);
  std::vector<san_model *> ms = models_of(m);
  uint64_t done = 0, ran = 0;
  uint64_t budget = res->budget ? res->budget : UINT64_MAX;
  res->why = SAN_RUN_DONE;
  res->wake_ns = -1;
  while (done < n && ran < budget) {
    // A real-time probe holds the time of the cycle before it, so that cycle must be this
    // call's: after a sleep the clock first catches up with the wall.
    bool candidate = k.skip && k.cycles >= k.probe_at && !(k.realtime && ran == 0);
    for (san_model *x : ms) candidate = candidate && quiet(x);
    ran++;
    if (!candidate) {
      tick(m);
      done++;
    } else if (!probe(m, ms)) {
      done++;
      k.probe_at = k.cycles + k.backoff;
      if (k.backoff < 4096) k.backoff *= 2;
    } else {
      done++;
      k.backoff = 16;
      if (k.realtime) {
        res->why = SAN_RUN_QUIET;
        res->wake_ns = wake_ns(ms);
        return done;
      }
      uint64_t wake = wake_cycle(ms);
      if (wake == UINT64_MAX && res->stop_quiet) {
        res->why = SAN_RUN_QUIET;
        return done;
      }
      uint64_t room = n - done;
      uint64_t to_wake = wake > k.cycles + 1 ? wake - 1 - k.cycles : 0;
      uint64_t by = to_wake < room ? to_wake : room;
      skip(m, ms, by);
      done += by;
    }
    if (res->stop_irq) {
      for (san_model *x : ms) {
        if (!x->msix.empty()) {
          res->why = SAN_RUN_IRQ;
          return done;
        }
      }
    }
  }
  return done;
}

}  // namespace

extern "C" {

void san_model_get_info(san_model_info *info) {
  info->abi = SAN_MODEL_ABI;
  info->verilator_version = Verilated::productVersion();
  info->data_width = 8 * kBytes;
}

san_model *san_model_new(const san_model_config *cfg) {
  if (cfg == nullptr || (cfg->host_size > 0 && cfg->host_mem == nullptr)) return nullptr;
  auto m = std::make_unique<san_model>();
  m->cfg = *cfg;
  m->rng = Rng(cfg->seed);
  m->ctx = std::make_unique<VerilatedContext>();
  m->top = std::make_unique<Vsan_nic_top>(m->ctx.get(), "san_nic_top");
  idle_bus(m->top.get());
  san_model_reset(m.get(), cfg->reset_cycles);
  return m.release();
}

void san_model_free(san_model *m) {
  if (m == nullptr) return;
  if (m->peer != nullptr) m->peer->peer = nullptr;
  if (m->segment != nullptr) erase(m->segment->members, m);
  if (m->fabric != nullptr) erase(m->fabric->models, m);
  m->top->final();
  delete m;
}

void san_model_reset(san_model *m, uint32_t cycles) {
  idle_bus(m->top.get());
  m->top->rst = 1;
  for (uint32_t i = 0; i < (cycles ? cycles : 1); i++) tick(m);
  m->top->rst = 0;
  flush(m);
  // The shell's time as the NIC's timers saw it before: counted from the first cycle out of
  // reset (in real time it goes on with the wall clock).
  m->tick_from = static_cast<int64_t>(now(m));
  if (!clock_of(m).realtime) {
    m->tick64 = 0;
  }
}

void san_model_step(san_model *m, uint64_t n) {
  san_run_result res{}; // neither stop: exactly n cycles
  advance(m, n, &res);
}

uint64_t san_model_run(san_model *m, uint64_t max, san_run_result *res) {
  return advance(m, max, res);
}

void san_model_set_realtime(san_model *m, int on) {
  Clock &k = clock_of(m);
  bool rt = on != 0;
  if (rt == k.realtime) return;
  k.realtime = rt;
  if (rt) {
    // Real time goes on from the shell time the clock's models have reached.
    uint64_t t = 0;
    for (san_model *x : models_of(m)) t = x->tick64 > t ? x->tick64 : t;
    k.rt_base = mono_ns() - t * 1024;
  } else {
    // Deterministic again: each model's time counts on from where it is.
    for (san_model *x : models_of(m)) {
      x->tick_from = static_cast<int64_t>(now(x)) - static_cast<int64_t>(x->tick64 * kTickCyc);
    }
  }
}

uint32_t san_model_time_tick(const san_model *m) { return static_cast<uint32_t>(m->tick64); }

void san_model_set_skip(san_model *m, int on) { clock_of(m).skip = on != 0; }

uint64_t san_model_skipped(const san_model *m) { return clock_of(m).skipped; }

uint64_t san_model_cycles(const san_model *m) { return now(m); }

int san_model_mmio_write32(san_model *m, uint32_t addr, uint32_t data, uint8_t strb,
                           uint32_t timeout) {
  Vsan_nic_top *t = m->top.get();
  t->s_axil_awaddr = addr;
  t->s_axil_awvalid = 1;
  t->s_axil_wdata = data;
  t->s_axil_wstrb = strb & 0xf;
  t->s_axil_wvalid = 1;
  t->s_axil_bready = 1;
  for (uint32_t i = 0; i < timeout; i++) {
    tick(m);
    if (m->hs.aw) t->s_axil_awvalid = 0;
    if (m->hs.w) t->s_axil_wvalid = 0;
    if (m->hs.b) {
      t->s_axil_bready = 0;
      return m->hs.resp_b;
    }
  }
  idle_bus(t);
  return SAN_RESP_TIMEOUT;
}

int san_model_mmio_read32(san_model *m, uint32_t addr, uint32_t *data, uint32_t timeout) {
  Vsan_nic_top *t = m->top.get();
  t->s_axil_araddr = addr;
  t->s_axil_arvalid = 1;
  t->s_axil_rready = 1;
  for (uint32_t i = 0; i < timeout; i++) {
    tick(m);
    if (m->hs.ar) t->s_axil_arvalid = 0;
    if (m->hs.r) {
      t->s_axil_rready = 0;
      *data = m->hs.rdata;
      return m->hs.resp_r;
    }
  }
  idle_bus(t);
  return SAN_RESP_TIMEOUT;
}

uint64_t san_model_last_write_cycle(const san_model *m) { return m->last_write_cycle; }

int san_model_msix_pop(san_model *m, uint16_t *vector) {
  if (m->msix.empty()) return 0;
  *vector = m->msix.front();
  m->msix.pop_front();
  return 1;
}

int san_model_guard_map(san_model *m, uint64_t iova, uint64_t len) {
  const san_model_config &c = m->cfg;
  if (len == 0 || iova < c.host_iova || iova + len > c.host_iova + c.host_size || iova + len < iova) {
    return -1;
  }
  m->mapped[iova] = len;
  return 0;
}

int san_model_guard_unmap(san_model *m, uint64_t iova) {
  return m->mapped.erase(iova) == 1 ? 0 : -1;
}

uint64_t san_model_dma_faults(const san_model *m, san_dma_fault *first) {
  if (first != nullptr) *first = m->first_fault;
  return m->faults;
}

int san_model_rx_push(san_model *m, const uint8_t *frame, uint32_t len, int bad) {
  if (len == 0) return -1;
  uint64_t c = now(m);
  for (uint32_t off = 0; off < len; off += kBytes) {
    uint32_t n = len - off < kBytes ? len - off : kBytes;
    uint64_t d = 0;
    std::memcpy(&d, frame + off, n);
    bool last = off + n == len;
    m->rx_inject.push_back(Beat{d, static_cast<uint8_t>((1u << n) - 1), last, last && bad != 0, c});
  }
  return 0;
}

void san_model_capture(san_model *m, int on) { m->capture = on != 0; }

int san_model_tx_pop(san_model *m, uint8_t *buf, uint32_t cap, uint64_t *first_cycle,
                     uint64_t *last_cycle) {
  return pop(m->tx_frames, buf, cap, first_cycle, last_cycle);
}

void san_model_capture_received(san_model *m, int on) {
  m->capture_rx = on != 0;
  if (!m->capture_rx) m->rx_started = false;
}

int san_model_received_pop(san_model *m, uint8_t *buf, uint32_t cap, uint64_t *first_cycle,
                           uint64_t *last_cycle) {
  return pop(m->rx_frames, buf, cap, first_cycle, last_cycle);
}

san_fabric *san_fabric_new(void) { return new san_fabric(); }

void san_fabric_free(san_fabric *f) {
  if (f == nullptr) return;
  for (san_model *m : f->models) {
    m->fabric = nullptr;
    m->segment = nullptr;
  }
  delete f;
}

int san_fabric_add(san_fabric *f, san_model *m) {
  if (m->fabric != nullptr) return -1;
  // The model's clock joins the fabric's; its own count continues from the fabric's, and its
  // time from the cycles it has run since reset.
  int64_t since = static_cast<int64_t>(m->own.cycles) - m->tick_from;
  m->fabric = f;
  f->models.push_back(m);
  m->tick_from = static_cast<int64_t>(f->clk.cycles) - since;
  return 0;
}

int san_fabric_link(san_fabric *f, san_model *a, san_model *b, uint32_t latency) {
  if (a == b || a->fabric != f || b->fabric != f || a->peer != nullptr || b->peer != nullptr ||
      a->segment != nullptr || b->segment != nullptr) {
    return -1;
  }
  a->peer = b;
  b->peer = a;
  a->latency = latency;
  b->latency = latency;
  return 0;
}

void san_fabric_step(san_fabric *f, uint64_t n) {
  if (f->models.empty()) {
    f->clk.cycles += n;
    return;
  }
  san_model_step(f->models.front(), n);
}

uint64_t san_fabric_cycles(const san_fabric *f) { return f->clk.cycles; }

san_segment *san_fabric_segment(san_fabric *f, uint32_t latency) {
  f->segments.push_back(std::make_unique<san_segment>(san_segment{f, latency, {}}));
  return f->segments.back().get();
}

int san_segment_join(san_segment *s, san_model *m) {
  if (m->fabric != s->fabric || m->peer != nullptr || m->segment != nullptr) return -1;
  m->segment = s;
  s->members.push_back(m);
  return 0;
}

int san_fabric_set_faults(san_fabric *f, san_model *from, san_model *to,
                          const san_link_faults *faults) {
  if (from == nullptr || to == nullptr || from->fabric != f || from->peer != to) return -1;
  const san_link_fault *k[kKinds] = {&faults->drop, &faults->corrupt, &faults->duplicate,
                                     &faults->reorder};
  for (const san_link_fault *x : k) {
    if (!(x->p >= 0.0 && x->p <= 1.0)) return -2; // NaN too
  }
  Link &l = from->out;
  l.faulty = false;
  for (int i = 0; i < kKinds; i++) {
    l.fault[i] = *k[i];
    l.run[i] = 0;
    l.faulty = l.faulty || k[i]->p > 0.0;
  }
  l.hold = faults->reorder_hold ? faults->reorder_hold : 4096;
  l.rng = SplitMix{faults->seed};
  return 0;
}

int san_fabric_fault_counts(const san_fabric *f, const san_model *from, const san_model *to,
                            san_link_counts *counts) {
  if (from == nullptr || to == nullptr || from->fabric != f || from->peer != to) return -1;
  *counts = from->out.counts;
  return 0;
}

int san_link_corrupt(uint8_t *frame, uint32_t len, uint64_t r, uint32_t *off, uint32_t *width) {
  *off = 0;
  *width = 0;
  // The end of the IPv4 datagram, when the frame says where it is and holds it: bytes after it
  // (a MAC's padding of a short frame) are not under the ICRC.
  uint32_t end = len;
  if (len >= 18 && frame[12] == 0x08 && frame[13] == 0x00) {
    uint32_t dgram = 14u + (static_cast<uint32_t>(frame[16]) << 8 | frame[17]);
    if (dgram < end) end = dgram;
  }
  if (end <= SAN_LINK_CORRUPT_FROM) return 0;
  uint32_t span = end - SAN_LINK_CORRUPT_FROM;
  uint32_t w = span < 4 ? span : 4;
  SplitMix g{r};
  uint32_t o = SAN_LINK_CORRUPT_FROM + static_cast<uint32_t>(g.next() % (span - w + 1));
  int n = 1 + static_cast<int>(g.next() % 3);
  uint32_t flipped = 0; // bits of the window already flipped
  for (int i = 0; i < n;) {
    uint32_t bit = static_cast<uint32_t>(g.next() % (8 * w));
    if (flipped >> bit & 1) continue;
    flipped |= 1u << bit;
    frame[o + bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    i++;
  }
  *off = o;
  *width = w;
  return n;
}

}  // extern "C"
