// A super-network for the selection tests of extract and export: vit_micro_32 with test::micro_table()
// and a sixth code, saved as an artifact, with a latency table of that file; latency rows.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "skd/extract/latency_table.h"
#include "skd/models/checkpoint.h"
#include "skd/models/mask_table.h"
#include "extract/micro_table.h"
#include "test_util.h"

namespace skd::test {

// A measured latency of `median_ms` at `batch_size`, p10 = 0.9 and p90 = 1.2 times the median.
inline extract::LatencyResult latency_result(int64_t batch_size, double median_ms) {
  extract::LatencyResult l;
  l.batch_size = batch_size;
  l.median_ms = median_ms;
  l.p10_ms = median_ms * 0.9;
  l.p90_ms = median_ms * 1.2;
  l.images_per_s = static_cast<double>(batch_size) / (median_ms / 1000);
  return l;
}

// An empty latency table of `model` (its sha256) at `batch_sizes`: cpu, no autocast, 2 threads, 1 warm-up
// and 3 timed runs.
inline extract::LatencyTable latency_table_of(const std::string& model, const std::string& sha256,
                                              std::vector<int64_t> batch_sizes) {
  extract::LatencyTable t;
  t.model = model;
  t.model_sha256 = sha256;
  t.device = "cpu";
  t.amp = "none";
  t.threads = 2;
  t.warmup = 1;
  t.repeats = 3;
  t.batch_sizes = std::move(batch_sizes);
  return t;
}

// test::micro_table() and a sixth, small code that a third of the full MACs (the paper's 4:12) fits.
inline models::MaskTable selection_table() {
  auto t = test::micro_table();
  t.append({{16, 0}, {0, 64}, {0, 64}, {0, 64}});
  return t;
}

// vit_micro_32 saved as a super-network with selection_table(), and a latency table of it whose medians
// fall with the code (12, 10, 8, 6, 4, 2 ms at batch 1, twice that at batch 4).
struct SelectionSupernet {
  std::string path, sha256, latency_table;
};

inline SelectionSupernet write_selection_supernet(const std::string& dir) {
  torch::manual_seed(0);
  auto model = models::create_model(models::resolve_arch(test::fixture("timm/vit_micro_32.json")));
  const auto table = selection_table();
  SelectionSupernet s{dir + "/super.safetensors", "", dir + "/super.latency.json"};
  models::save_artifact(s.path, *model, {}, models::supernet_manifest_entries(model->config(), table));
  s.sha256 = models::file_sha256(s.path);
  auto t = latency_table_of(s.path, s.sha256, {1, 4});
  const auto costs = models::code_costs(model->config(), table);
  for (int64_t k = 0; k <= table.last_code(); ++k) {
    extract::LatencyCodeRow r;
    r.code = k;
    r.widths = table.widths(k);
    r.cost = costs[static_cast<size_t>(k)];
    for (int64_t b : t.batch_sizes)
      r.latency.push_back(latency_result(b, (12.0 - 2.0 * static_cast<double>(k)) * (b == 1 ? 1 : 2)));
    t.codes.push_back(r);
  }
  extract::write_latency_table(s.latency_table, t);
  return s;
}

}  // namespace skd::test
