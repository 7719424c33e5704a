#pragma once
/// \file checkpoint.hpp
/// Training checkpoints: model parameters, optimiser state, where training stands, and
/// the random generators' states, in one safetensors file written atomically.
///
/// Layout: tensors "model.<parameter or buffer name>" (the model's dtype; a count buffer
/// such as num_batches_tracked as int64), "optim.<state name>"
/// (float64, see Optimizer::state_names), "rng.default" and "rng.model.<generator name>"
/// (int64: the words of the generators' standard textual states); metadata
/// "tapegrad.checkpoint" = "1", "epoch", "step", "optimizer" (its name), and
/// "extra.<key>" for the caller's own entries. Any safetensors reader can open it.

#include <cstdint>
#include <map>
#include <string>

#include "tapegrad/io.hpp"
#include "tapegrad/nn.hpp"
#include "tapegrad/optim.hpp"

namespace tg::io {

/// Where training stands, plus free-form entries (configuration, history, ...).
struct CheckpointInfo {
    std::uint64_t epoch = 0;  ///< completed epochs
    std::uint64_t step = 0;   ///< optimiser steps taken
    /// The caller's own entries, stored as "extra.<key>" in the file.
    std::map<std::string, std::string> extra;
};

/// Writes model, optimiser, generator states and `info` to `path` atomically (a crash
/// mid-write leaves the previous file intact).
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, const optim::Optimizer<T>& opt,
                     const CheckpointInfo& info = {});

/// Restores what save_checkpoint wrote into `model`, `opt` and the generators (the
/// model's and tg::default_generator()), and returns the info. All or nothing: every name,
/// shape and entry is checked before anything changes; a mismatch is a tg::Error naming
/// the file and the entry.
template <class T>
CheckpointInfo load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>& opt);

/// The same from a file already read (tg::io::load or tg::io::parse); `source` names it
/// in errors.
template <class T>
CheckpointInfo load_checkpoint(const File& file, const std::string& source, nn::Module<T>& model,
                               optim::Optimizer<T>& opt);

/// The epoch, step and extra entries of a checkpoint, without changing anything (e.g. to
/// check its configuration before load_checkpoint).
CheckpointInfo read_checkpoint_info(const std::string& path);

}  // namespace tg::io
