#pragma once
// The bodies of the libFuzzer targets, as plain functions: the fuzz executables call them
// from LLVMFuzzerTestOneInput, and the unit tests replay every input kept under
// tests/fuzz/regressions/<target>/ through them, so an input that once crashed a target
// stays a test in every build.
//
// Each returns 0 after checking what the library promises for the input: the bytes are
// refused with a tg::Error, or accepted and then usable (converted, round-tripped, trained
// on). Any other exception escapes, and the fuzzer reports it as a finding.

#include <cstddef>
#include <cstdint>
#include <string>

namespace tg::fuzz {

/// The bytes as a safetensors file: parse, convert every tensor to every element type, and
/// serialise and parse again (which must give the same file).
int safetensors(const std::uint8_t* data, std::size_t size);

/// The bytes as a training checkpoint, loaded into a fixed model with Adam and with SGD
/// (the models the seeds were saved from), then one training step with what was loaded.
int checkpoint(const std::uint8_t* data, std::size_t size);

/// The bytes as IDX files, plain or gzip'd: byte 0 chooses read_idx of the rest (even) or
/// load_idx_dataset<float> of the rest split in two at the position bytes 1-2 give (odd).
int idx(const std::uint8_t* data, std::size_t size);

/// The bytes as a torch.save file: parse_torch, convert every tensor to every element type,
/// and serialize_torch and parse_torch again (which must give the same file).
int torch(const std::uint8_t* data, std::size_t size);

/// The bytes as an image file: byte 0 chooses the channels (0, 1 or 3, by its value mod 3)
/// and decode_image decodes the rest. An image it accepts must be [C, H, W] with C 1 or 3
/// and at most max_image_pixels pixels, survive resize_image to 5 x 3, and come back
/// unchanged through encode_png and decode_image.
int image(const std::uint8_t* data, std::size_t size);

/// Writes the seed inputs of every target, made by the library itself, under `dir`
/// (dir/safetensors, dir/checkpoint, dir/idx, dir/torch, dir/image); returns how many files it wrote.
int write_seeds(const std::string& dir);

}  // namespace tg::fuzz
