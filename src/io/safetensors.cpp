// tg::io safetensors format: serialize() and parse(), in memory. Reading trusts nothing in
// the file: every length, offset and shape is checked before it is used, and a CRC-32 over
// the contents (when the writer left one) turns silent corruption into an error.

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io.hpp"

namespace tg::io {

namespace {

using json = nlohmann::json;
using detail::checksum_key;
using detail::quote;

const std::string metadata_key = "__metadata__";
const std::string marker_key = "tapegrad.checksum";  // says a checksum must be present

constexpr Dtype all_dtypes[] = {Dtype::f64, Dtype::f32, Dtype::f16, Dtype::bf16, Dtype::i64,
                                Dtype::i32, Dtype::i16, Dtype::i8,  Dtype::u8,   Dtype::boolean};

// --- header parsing -------------------------------------------------------------------

// nlohmann's messages quote the bytes they stopped at; keep the message printable.
std::string printable(const char* message)
{
    std::string s = message;
    if (s.rfind("[json.exception.", 0) == 0 && s.find("] ") != std::string::npos) s.erase(0, s.find("] ") + 2);
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

// Parses the header JSON. nlohmann keeps the last of duplicate keys without a word, so a
// parser callback tracks each open object's keys and rejects the second one. The callback
// also caps nesting at the depth a safetensors header has (a shape array inside an entry),
// so that 100 MB of '[' cannot build a 100-million-level tree.
json parse_header(const std::string& text, const std::string& source)
{
    // nlohmann stops at a NUL as at the end of input and would ignore what follows.
    if (text.find('\0') != std::string::npos) throw Error(source + ": the header contains a NUL byte");
    struct Frame {
        std::set<std::string> keys;
        std::string owner;  // the key this object is the value of ("" at the top level)
        int depth;
    };
    std::vector<Frame> frames;
    std::string last_key;
    auto duplicate = [&](const std::string& key) {
        const int depth = frames.back().depth;
        std::string what = "the header has the key " + quote(key) + " twice";  // when it is no object
        if (frames.front().depth == 0 && depth == 0) {
            what =
                key == metadata_key ? "the header has two __metadata__ entries" : "duplicate tensor name " + quote(key);
        } else if (frames.front().depth == 0 && frames[1].owner == metadata_key) {
            what = depth == 1 ? "duplicate metadata key " + quote(key)
                              : "__metadata__ has the key " + quote(key) + " twice";
        } else if (frames.front().depth == 0) {
            what = "tensor " + quote(frames[1].owner) + " has the key " + quote(key) + " twice";
        }
        return Error(source + ": " + what);
    };
    json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
            if (depth >= 3) throw Error(source + ": the header nests deeper than a safetensors header does");
            if (event == json::parse_event_t::object_start) frames.push_back({{}, depth == 0 ? "" : last_key, depth});
        } else if (event == json::parse_event_t::object_end) {
            frames.pop_back();
        } else if (event == json::parse_event_t::key) {
            last_key = parsed.get<std::string>();
            if (!frames.back().keys.insert(last_key).second) throw duplicate(last_key);
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), callback);
    } catch (const json::exception& e) {
        throw Error(source + ": the header is not valid UTF-8 JSON (" + printable(e.what()) + ")");
    }
}

bool is_index(const json& v)
{
    return v.is_number_unsigned();
}

// A JSON value for a message, cut short (at a character boundary) if long.
std::string excerpt(const json& v)
{
    std::string s = v.dump();
    if (s.size() <= 60) return s;
    std::size_t cut = 60;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
    return s.substr(0, cut) + "...";
}

// "a number", "an array", "null", ... for messages.
std::string kind(const json& v)
{
    std::string name = v.type_name();
    if (v.is_null()) return name;
    return (v.is_object() || v.is_array() ? "an " : "a ") + name;
}

Tensor read_entry(const json& entry, const std::string& where, std::pair<std::uint64_t, std::uint64_t>& offsets)
{
    if (!entry.is_object()) throw Error(where + " is " + kind(entry) + ", not an object");
    auto field = [&](const char* key) -> const json& {
        auto it = entry.find(key);
        if (it == entry.end()) throw Error(where + " has no \"" + key + "\"");
        return *it;
    };
    const json& dtype = field("dtype");
    const json& shape = field("shape");
    const json& range = field("data_offsets");

    Tensor t;
    if (!dtype.is_string()) throw Error(where + ": \"dtype\" is " + kind(dtype) + ", not a string");
    const auto& dname = dtype.get_ref<const std::string&>();
    auto known =
        std::find_if(std::begin(all_dtypes), std::end(all_dtypes), [&](Dtype d) { return dname == dtype_name(d); });
    if (known == std::end(all_dtypes)) throw Error(where + ": unknown dtype " + quote(dname));
    t.dtype = *known;

    if (!shape.is_array()) throw Error(where + ": \"shape\" is " + kind(shape) + ", not an array");
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (!is_index(shape[i])) {
            throw Error(where + ": \"shape\" must hold non-negative integers, element " + std::to_string(i) + " is " +
                        excerpt(shape[i]));
        }
        t.shape.push_back(shape[i].get<std::size_t>());
    }

    if (!range.is_array() || range.size() != 2 || !is_index(range[0]) || !is_index(range[1])) {
        throw Error(where + ": \"data_offsets\" must be [begin, end], two non-negative integers, not " +
                    excerpt(range));
    }
    offsets = {range[0].get<std::uint64_t>(), range[1].get<std::uint64_t>()};
    return t;
}

}  // namespace

// --- writing --------------------------------------------------------------------------

namespace detail {

std::string serialize_as(const File& file, const std::string& where)
{
    std::map<std::string, std::string> metadata = file.metadata;
    for (const std::string& key : {marker_key, checksum_key}) {
        if (metadata.count(key) != 0) throw Error(where + ": metadata key " + quote(key) + " is reserved");
    }
    std::vector<const std::pair<const std::string, Tensor>*> order;
    for (const auto& entry : file.tensors) {
        if (entry.first == metadata_key)
            throw Error(where + ": a tensor cannot be named '__metadata__' (the metadata key)");
        check_bytes(entry.second, where + ": tensor " + quote(entry.first));
        order.push_back(&entry);
    }
    // Largest elements first: with the header padded to 8 bytes, every tensor then starts at
    // a multiple of its element size, as loaders that map the file in place want.
    std::stable_sort(order.begin(), order.end(),
                     [](auto* a, auto* b) { return dtype_size(a->second.dtype) > dtype_size(b->second.dtype); });
    metadata[marker_key] = "crc32";
    metadata[checksum_key] = checksum(file.tensors, metadata);

    json header = json::object();
    std::uint64_t offset = 0;
    for (const auto* entry : order) {
        const Tensor& t = entry->second;
        json e = json::object();
        e["dtype"] = dtype_name(t.dtype);
        e["shape"] = t.shape;
        e["data_offsets"] = json::array({offset, offset + t.bytes.size()});
        header[entry->first] = std::move(e);
        offset += t.bytes.size();
    }
    header[metadata_key] = metadata;
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception&) {
        throw Error(where + ": a tensor name or metadata entry is not valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    std::string out(8, '\0');
    store_le(reinterpret_cast<unsigned char*>(out.data()), std::uint64_t{text.size()});
    out.reserve(8 + text.size() + offset);
    out += text;
    for (const auto* entry : order) out.append(entry->second.bytes.begin(), entry->second.bytes.end());
    return out;
}

}  // namespace detail

// --- public ---------------------------------------------------------------------------

bool operator==(const File& a, const File& b)
{
    return a.tensors == b.tensors && a.metadata == b.metadata;
}
bool operator!=(const File& a, const File& b)
{
    return !(a == b);
}

std::string serialize(const File& file)
{
    return detail::serialize_as(file, "serialize");
}

File parse(const std::string& bytes, const std::string& source)
{
    const std::string where = source + ": ";
    if (bytes.size() < 8) {
        throw Error(where + "the file has " + std::to_string(bytes.size()) +
                    " bytes, too few for the 8-byte header length (truncated?)");
    }
    const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint64_t header_size = detail::load_le<std::uint64_t>(raw);
    const std::uint64_t rest = bytes.size() - 8;
    if (header_size > max_header_bytes) {
        throw Error(where + "the header length " + std::to_string(header_size) + " exceeds the limit of " +
                    std::to_string(max_header_bytes) + " bytes (100 MiB)");
    }
    if (header_size > rest) {
        throw Error(where + "the header length " + std::to_string(header_size) + " exceeds the " +
                    std::to_string(rest) + " bytes that follow it (truncated?)");
    }
    const json header = parse_header(bytes.substr(8, header_size), source);
    if (!header.is_object()) throw Error(where + "the header is " + kind(header) + ", not an object");

    const std::uint64_t buffer_size = rest - header_size;
    const unsigned char* buffer = raw + 8 + header_size;
    struct Range {
        std::uint64_t begin, end;
        const std::string* name;
    };
    std::vector<Range> ranges;
    File file;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        if (name == metadata_key) {
            if (!it->is_object()) throw Error(where + "__metadata__ is " + kind(*it) + ", not an object");
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string()) {
                    throw Error(where + "__metadata__ must map to strings, but " + quote(m.key()) + " is " + kind(*m));
                }
                file.metadata[m.key()] = m->get<std::string>();
            }
            continue;
        }
        const std::string tensor = where + "tensor " + quote(name);
        std::pair<std::uint64_t, std::uint64_t> offsets;
        Tensor t = read_entry(*it, tensor, offsets);
        const auto [begin, end] = offsets;
        const std::string span = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
        if (begin > end) throw Error(tensor + ": " + span + " end before they begin");
        if (end > buffer_size) {
            throw Error(tensor + ": " + span + " reach past the end of the " + std::to_string(buffer_size) +
                        "-byte data buffer");
        }
        const auto needed = detail::byte_count(t.shape, t.dtype);
        if (!needed) throw Error(tensor + ": shape " + format_shape(t.shape) + " has too many elements");
        if (*needed != end - begin) {
            throw Error(tensor + ": shape " + format_shape(t.shape) + " of " + dtype_name(t.dtype) + " needs " +
                        std::to_string(*needed) + " bytes, but " + span + " hold " + std::to_string(end - begin));
        }
        t.bytes.assign(buffer + begin, buffer + end);
        ranges.push_back({begin, end, &name});
        file.tensors.emplace(name, std::move(t));
    }

    // The ranges must tile the buffer: sorted by position, each begins where the last ended.
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    std::uint64_t pos = 0;
    const Range* previous = nullptr;
    auto unused = [&](std::uint64_t from, std::uint64_t to) {
        return Error(where + "bytes [" + std::to_string(from) + ", " + std::to_string(to) +
                     ") of the data buffer belong to no tensor");
    };
    for (const Range& r : ranges) {
        if (r.begin < pos) {
            throw Error(where + "tensors " + quote(*previous->name) + " and " + quote(*r.name) + " overlap ([" +
                        std::to_string(previous->begin) + ", " + std::to_string(previous->end) + "] and [" +
                        std::to_string(r.begin) + ", " + std::to_string(r.end) + "])");
        }
        if (r.begin > pos) throw unused(pos, r.begin);
        pos = r.end;
        previous = &r;
    }
    if (pos != buffer_size) throw unused(pos, buffer_size);

    const auto marker = file.metadata.find(marker_key);
    const auto stored = file.metadata.find(checksum_key);
    if (marker != file.metadata.end() && marker->second != "crc32") {
        throw Error(where + "unknown checksum kind " + quote(marker->second) + " in " + quote(marker_key));
    }
    if (marker != file.metadata.end() && stored == file.metadata.end()) {
        throw Error(where + "checksum entry " + quote(checksum_key) + " is missing: the file is corrupt");
    }
    if (stored != file.metadata.end()) {
        const std::string computed = detail::checksum(file.tensors, file.metadata);
        if (stored->second != computed) {
            throw Error(where + "checksum mismatch: the file is corrupt (stored " + quote(stored->second) +
                        ", computed " + quote(computed) + ")");
        }
        file.metadata.erase(stored);
    }
    if (marker != file.metadata.end()) file.metadata.erase(marker);
    return file;
}

}  // namespace tg::io
