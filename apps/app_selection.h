// The sub-network flags skd-extract and skd-export share (extract::SubnetSelection's keys, bound by
// app::OptionBinder): one of --op-code, --macs, --macs-ratio, --latency, --widths, --attn-keep/--mlp-keep,
// and --macs-convention. The library checks "at most one" again for the command line and --config
// together (extract::check_selection).
#pragma once

#include <string>

#include "app_options.h"

namespace skd::app {

// Adds the selection flags to `group`; `latency_help` says where a latency budget's batch size comes from.
template <typename Job>
void add_selection_options(OptionBinder<Job>& b, CLI::App* group, const std::string& latency_help) {
  auto* code = b.add(group, "op_code", "code of the mask table (0 = full, -1 = smallest)");
  auto* macs = b.add(group, "macs", "largest sub-network with at most these MACs (2.43G, 897M, ...)");
  auto* ratio = b.add(group, "macs_ratio",
                      "largest sub-network with at most this fraction of the "
                      "full network's MACs: 0.333, 4/12 or 4:12 (the paper's n:12)");
  auto* latency = b.add(group, "latency",
                        "largest sub-network whose measured median latency fits "
                        "(5ms, 800us, 0.5s; from --latency-table, " +
                            latency_help + ")");
  auto* widths = b.add(group, "widths", "per-block widths 'attn:mlp,attn:mlp,...'");
  auto* attn_keep = b.add(group, "attn_keep", "keep this fraction of every head's q/k/v dims");
  auto* mlp_keep = b.add(group, "mlp_keep", "keep this fraction of every MLP's hidden units");
  for (auto* x : {code, macs, ratio, latency})
    for (auto* y : {code, macs, ratio, latency, widths, attn_keep, mlp_keep})
      if (x != y) x->excludes(y);
  widths->excludes(attn_keep)->excludes(mlp_keep);
  b.add(group, "macs_convention",
        "MACs convention of --macs/--macs-ratio: paper (ptflops rules, the "
        "paper's numbers) | full (+ attention matmuls)");
}

}  // namespace skd::app
