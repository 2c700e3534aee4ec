// The sub-network flags skd-extract and skd-export share (extract::SubnetSelection's keys; their help is
// the field's): one of --op-code, --macs, --macs-ratio, --latency, --widths, --attn-keep/--mlp-keep, and
// --macs-convention. The library checks "at most one" again for the command line and --config together
// (extract::check_selection).
#pragma once

#include <string>

#include "skd/cli/binder.h"

namespace skd::app {

// Adds the selection flags to `group`.
template <typename Job>
void add_selection_options(cli::OptionBinder<Job>& b, CLI::App* group) {
  auto* code = b.add(group, "op_code");
  auto* macs = b.add(group, "macs");
  auto* ratio = b.add(group, "macs_ratio");
  auto* latency = b.add(group, "latency");
  auto* widths = b.add(group, "widths");
  auto* attn_keep = b.add(group, "attn_keep");
  auto* mlp_keep = b.add(group, "mlp_keep");
  for (auto* x : {code, macs, ratio, latency})
    for (auto* y : {code, macs, ratio, latency, widths, attn_keep, mlp_keep})
      if (x != y) x->excludes(y);
  widths->excludes(attn_keep)->excludes(mlp_keep);
  b.add(group, "macs_convention");
}

}  // namespace skd::app
