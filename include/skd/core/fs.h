// File helpers: bounded whole-file reads and atomic writes (temp file, fsync, rename).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace skd {

// Reads a whole file. Throws std::runtime_error naming the path if it cannot be opened/read or
// is larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes = UINT64_C(1) << 40);

// Writes `size` bytes to `path` atomically: a temporary file in the same directory is written,
// fsync'ed and renamed over `path`, then the directory is fsync'ed. On any failure the temporary
// file is removed, `path` keeps its previous content, and std::runtime_error names the path.
// An existing `path` that is not a regular file (a directory, device node, FIFO, socket; through a
// symbolic link too) is never replaced: std::runtime_error. Stale temporary files of earlier killed
// writes to `path` are removed first (remove_stale_temp_files).
void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& content);

// ---- Checks a job makes before any work (docs/reliability.md, "Hostile input"). `key` is the config key
// that names the path (messages: skd::ParameterError / skd::ParameterFailure, rendered as the app's flag).

// Device and inode of an existing file (stat, so through symbolic links); false when it does not exist.
bool file_identity(const std::string& path, uint64_t* dev, uint64_t* ino);

// True when both paths exist and are the same file (same device and inode: hard links, symbolic links and
// different spellings of one path included).
bool same_file(const std::string& a, const std::string& b);

// same_file, or both spell the same location (std::filesystem::weakly_canonical; for files not written yet).
bool same_path(const std::string& a, const std::string& b);

// The outputs of one job (config key, path; empty paths ignored) are pairwise different files:
// skd::ParameterError naming both keys otherwise.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

// An input file must exist and be a regular file (checked with stat, before any open, so a FIFO or a
// device cannot block or feed the job). std::runtime_error (skd::ParameterFailure when `key` is given)
// naming the path otherwise.
void check_input_file(const std::string& path, const std::string& key = "");

// An output file of a job, checked before the job does any work: the path is not a directory, a device
// node, a FIFO or a socket (an existing output must be a regular file), its folder exists and is
// writable, and it is not the same file as any of `inputs` (by identity; empty entries and inputs that do
// not exist are ignored). skd::ParameterError (usage, exit 2) for an output that is an input or not a
// file; skd::ParameterFailure (exit 1) for a folder that is missing or not writable.
void check_output_file(const std::string& key, const std::string& path, const std::vector<std::string>& inputs = {});

// An output folder (a run directory): an existing path must be a writable directory; a missing one must be
// creatable (its nearest existing ancestor is a writable directory). Errors as for check_output_file.
void check_output_dir(const std::string& key, const std::string& path);

// The temporary files write_file_atomic makes for `path` are "<dir>/.<name>.tmp-<pid>-<random>". Removes
// those left by a writer that was killed (its pid no longer runs, or the file is older than this process)
// and returns how many were removed. write_file_atomic calls it before each write.
int remove_stale_temp_files(const std::string& path);

// Appends `line` plus a newline to `path` (created if missing) in one write, then fsyncs it (JSON-lines
// logs that survive a crash). Throws std::runtime_error naming the path.
void append_line_synced(const std::string& path, const std::string& line);

}  // namespace skd
