// tg::io torch.save files (the zip format of PyTorch 1.6 and later): <archive>/data.pkl, a
// pickle whose tensors name their storages by persistent id, and <archive>/data/<key>, each
// storage's raw bytes. Reading interprets the pickle with a small machine of its own that
// knows only the opcodes and globals of tensors, state dicts and optimizer state dicts (what
// PyTorch's weights_only=True allows): nothing in a file is ever executed, and anything else
// is refused by name. Writing emits a flat state_dict in pickle protocol 2.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>
#include <utility>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io.hpp"

namespace tg::io {

namespace {

using detail::quote;

thread_local bool force_zip64_writes = false;

// The storage types PyTorch pickles (as `torch.<name>`), with the dtype each holds; those
// without a Dtype load as no tensor of tapegrad's (they are refused, naming the tensor).
struct StorageType {
    const char* name;
    const char* torch_dtype;
    std::optional<Dtype> dtype;
};

const StorageType storage_types[] = {
    {"FloatStorage", "float32", Dtype::f32},
    {"DoubleStorage", "float64", Dtype::f64},
    {"HalfStorage", "float16", Dtype::f16},
    {"BFloat16Storage", "bfloat16", Dtype::bf16},
    {"LongStorage", "int64", Dtype::i64},
    {"IntStorage", "int32", Dtype::i32},
    {"ShortStorage", "int16", Dtype::i16},
    {"CharStorage", "int8", Dtype::i8},
    {"ByteStorage", "uint8", Dtype::u8},
    {"BoolStorage", "bool", Dtype::boolean},
    {"ComplexHalfStorage", "complex32", std::nullopt},
    {"ComplexFloatStorage", "complex64", std::nullopt},
    {"ComplexDoubleStorage", "complex128", std::nullopt},
    {"QInt8Storage", "qint8", std::nullopt},
    {"QUInt8Storage", "quint8", std::nullopt},
    {"QInt32Storage", "qint32", std::nullopt},
    {"QUInt4x2Storage", "quint4x2", std::nullopt},
    {"QUInt2x4Storage", "quint2x4", std::nullopt},
};

const StorageType& storage_type_of(Dtype dtype)
{
    for (const StorageType& t : storage_types) {
        if (t.dtype == dtype) return t;
    }
    throw Error("save_torch: invalid Dtype value " + std::to_string(static_cast<int>(dtype)));
}

// --- the pickle's values --------------------------------------------------------------

// The callables weights_only allows (and storage types, which are only named).
enum class Callable {
    ordered_dict,
    rebuild_tensor_v2,
    rebuild_tensor,
    rebuild_parameter,
    rebuild_parameter_with_state,
    size,
    storage_type
};

enum class Kind { none, boolean, integer, real, string, tuple, list, dict, global, storage, tensor };

struct Value;
// Values live in an Arena for the whole load and point at each other: a pickle can make a
// list that contains itself, which reference counting would leak.
using Ref = Value*;

struct DictData {
    std::vector<std::pair<Ref, Ref>> entries;             // in insertion order
    std::unordered_map<std::string, std::size_t> index;   // entry by key identity
    std::vector<std::pair<std::string, Ref>> attributes;  // set by BUILD
};

struct View {
    Ref storage = nullptr;
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> shape, strides;
};

struct Value {
    Kind kind = Kind::none;
    bool boolean = false;
    std::int64_t integer = 0;
    double real = 0;
    std::string text;                            // string; global: "module.name"; storage: key
    std::vector<Ref> items;                      // tuple, list
    Callable callable = Callable::ordered_dict;  // global
    const StorageType* storage_type = nullptr;   // global (a storage type), storage
    std::uint64_t numel = 0;                     // storage
    std::unique_ptr<DictData> dict;              // dict
    std::unique_ptr<View> view;                  // tensor
};

// At most this many values per pickle: each takes about 150 bytes, so a hostile pickle of
// one-byte opcodes cannot take more than a few GB.
constexpr std::size_t max_values = std::size_t{1} << 24;

class Arena {
public:
    Ref make(Kind kind)
    {
        if (values_.size() >= max_values) return nullptr;
        values_.emplace_back();
        Value& v = values_.back();
        v.kind = kind;
        if (kind == Kind::dict) v.dict = std::make_unique<DictData>();
        if (kind == Kind::tensor) v.view = std::make_unique<View>();
        return &v;
    }

private:
    std::deque<Value> values_;
};

const char* kind_name(Kind kind)
{
    switch (kind) {
    case Kind::none:
        return "None";
    case Kind::boolean:
        return "a bool";
    case Kind::integer:
        return "an int";
    case Kind::real:
        return "a float";
    case Kind::string:
        return "a str";
    case Kind::tuple:
        return "a tuple";
    case Kind::list:
        return "a list";
    case Kind::dict:
        return "a dict";
    case Kind::global:
        return "a global";
    case Kind::storage:
        return "a storage";
    case Kind::tensor:
        return "a tensor";
    }
    return "a value";
}

// The kinds a dict key may have: the hashable leaves.
bool is_key_kind(Kind kind)
{
    return kind == Kind::none || kind == Kind::boolean || kind == Kind::integer || kind == Kind::real ||
           kind == Kind::string;
}

// A float as Python's repr() writes it: the shortest digits that read back to the same
// value, positional for exponents -4 to 15 ("0.001", "3.0"), otherwise "1e-08", "1e+16".
std::string python_float(double v)
{
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::scientific);
    const std::string sci(buffer, result.ptr);
    const std::size_t e_at = sci.find('e');
    std::string mantissa = sci.substr(0, e_at);
    const int exponent = std::stoi(sci.substr(e_at + 1));
    std::string sign;
    if (mantissa[0] == '-') {
        sign = "-";
        mantissa.erase(0, 1);
    }
    std::string digits = mantissa;
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    if (exponent < -4 || exponent >= 16) {
        std::string out = sign + digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char e[16];
        std::snprintf(e, sizeof e, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
        return out + e;
    }
    if (exponent < 0) return sign + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    const auto point = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= point) return sign + digits + std::string(point - digits.size(), '0') + ".0";
    return sign + digits.substr(0, point) + "." + digits.substr(point);
}

// The text of a leaf (None, bool, int, float, str), as Python's str() writes it.
std::string leaf_text(const Value& v)
{
    switch (v.kind) {
    case Kind::none:
        return "None";
    case Kind::boolean:
        return v.boolean ? "True" : "False";
    case Kind::integer:
        return std::to_string(v.integer);
    case Kind::real:
        return python_float(v.real);
    default:
        return v.text;
    }
}

bool valid_utf8(const std::string& s)
{
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = 0;  // continuation bytes
        std::uint32_t cp = 0;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n >= s.size() - i) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        constexpr std::uint32_t least[] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10ffff) return false;  // overlong, or beyond Unicode
        i += n + 1;
    }
    return true;
}

// --- the pickle machine ---------------------------------------------------------------

class Unpickler {
public:
    Unpickler(const std::string& data, std::string where, Arena& arena)
        : data_(data), where_(std::move(where)), arena_(arena)
    {}

    Ref load()
    {
        for (;;) {
            if (pos_ >= data_.size()) throw fail("the pickle ends without a STOP opcode (truncated?)");
            op_at_ = pos_;
            const auto op = static_cast<unsigned char>(data_[pos_++]);
            if (op == '.') {
                return pop();
            }
            step(op);
        }
    }

private:
    Error fail(const std::string& what) const
    {
        return Error(where_ + ": " + what + " (at byte " + std::to_string(op_at_) + ")");
    }

    const unsigned char* take(std::size_t n)
    {
        if (n > data_.size() - pos_) throw fail("the pickle ends inside an opcode's argument (truncated?)");
        const auto* p = reinterpret_cast<const unsigned char*>(data_.data()) + pos_;
        pos_ += n;
        return p;
    }
    template <class U> U take_le() { return detail::load_le<U>(take(sizeof(U))); }

    std::string take_line()
    {
        const std::size_t end = data_.find('\n', pos_);
        if (end == std::string::npos || end - pos_ > 1000) throw fail("a GLOBAL's name is not a line of text");
        std::string line = data_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return line;
    }

    Ref make(Kind kind)
    {
        const Ref v = arena_.make(kind);
        if (v == nullptr) throw fail("the pickle makes more than " + std::to_string(max_values) + " values");
        return v;
    }

    std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

    Ref pop()
    {
        if (stack_.size() <= floor()) throw fail("the pickle pops from an empty stack");
        Ref v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Ref& top()
    {
        if (stack_.size() <= floor()) throw fail("the pickle uses the top of an empty stack");
        return stack_.back();
    }
    std::vector<Ref> pop_mark()
    {
        if (marks_.empty()) throw fail("the pickle has no MARK to pop to");
        std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
        stack_.resize(marks_.back());
        marks_.pop_back();
        return items;
    }
    void push(Ref v) { stack_.push_back(v); }

    void push_int(std::int64_t i)
    {
        Ref v = make(Kind::integer);
        v->integer = i;
        push(v);
    }
    void push_string(std::string s)
    {
        if (!valid_utf8(s)) throw fail("a string is not valid UTF-8");
        Ref v = make(Kind::string);
        v->text = std::move(s);
        push(v);
    }
    Ref tuple(std::vector<Ref> items)
    {
        Ref v = make(Kind::tuple);
        v->items = std::move(items);
        return v;
    }

    // The identity of a dict key (Python's equality for the hashable leaves).
    std::string key_identity(const Value& k) const
    {
        if (!is_key_kind(k.kind))
            throw fail(std::string("a dict key is ") + kind_name(k.kind) + ", not a str or number");
        return std::to_string(static_cast<int>(k.kind)) + ":" + leaf_text(k);
    }
    void set_item(Value& dict, Ref key, Ref value)
    {
        if (dict.kind != Kind::dict) throw fail(std::string("SETITEM on ") + kind_name(dict.kind) + ", not a dict");
        const std::string id = key_identity(*key);
        const auto [it, inserted] = dict.dict->index.emplace(id, dict.dict->entries.size());
        if (inserted) {
            dict.dict->entries.emplace_back(key, value);
        } else {
            dict.dict->entries[it->second].second = value;
        }
    }

    void global()
    {
        const std::string module = take_line();
        const std::string name = take_line();
        const std::string full = module + "." + name;
        Ref v = make(Kind::global);
        v->text = full;
        if (full == "collections.OrderedDict") {
            v->callable = Callable::ordered_dict;
        } else if (full == "torch._utils._rebuild_tensor_v2") {
            v->callable = Callable::rebuild_tensor_v2;
        } else if (full == "torch._utils._rebuild_tensor") {
            v->callable = Callable::rebuild_tensor;
        } else if (full == "torch._utils._rebuild_parameter") {
            v->callable = Callable::rebuild_parameter;
        } else if (full == "torch._utils._rebuild_parameter_with_state") {
            v->callable = Callable::rebuild_parameter_with_state;
        } else if (full == "torch.Size") {
            v->callable = Callable::size;
        } else {
            const StorageType* type = nullptr;
            for (const StorageType& t : storage_types) {
                if (module == "torch" && name == t.name) type = &t;
            }
            if (type == nullptr) {
                std::string shown;
                for (unsigned char c : full) shown += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
                throw fail("the pickle refers to the global " + quote(shown) +
                           ", which a weights-only load does not allow (only tensors, their storages, "
                           "OrderedDict and plain values): the file is not loaded");
            }
            v->callable = Callable::storage_type;
            v->storage_type = type;
        }
        push(v);
    }

    static bool is_index(const Ref& v) { return v->kind == Kind::integer && v->integer >= 0; }

    std::vector<std::uint64_t> indices(const Ref& v, const char* what) const
    {
        if (v->kind != Kind::tuple) throw fail(std::string("a tensor's ") + what + " is " + kind_name(v->kind));
        std::vector<std::uint64_t> out;
        for (const Ref& item : v->items) {
            if (!is_index(item)) {
                throw fail(std::string("a tensor's ") + what + " holds " +
                           (item->kind == Kind::integer ? "a negative int" : kind_name(item->kind)));
            }
            out.push_back(static_cast<std::uint64_t>(item->integer));
        }
        return out;
    }

    Ref rebuild_tensor(const std::vector<Ref>& args, const std::string& who)
    {
        if (args[0]->kind != Kind::storage) throw fail(who + "'s first argument is " + kind_name(args[0]->kind));
        if (!is_index(args[1])) throw fail(who + "'s storage offset is not an int >= 0");
        const Ref t = make(Kind::tensor);
        View& v = *t->view;
        v.storage = args[0];
        v.offset = static_cast<std::uint64_t>(args[1]->integer);
        v.shape = indices(args[2], "size");
        v.strides = indices(args[3], "stride");
        if (v.shape.size() != v.strides.size()) {
            throw fail("a tensor's size " + format_shape(v.shape) + " and stride " + format_shape(v.strides) +
                       " differ in length");
        }
        return t;
    }

    void reduce()
    {
        const Ref args = pop();
        const Ref callable = pop();
        if (callable->kind != Kind::global) throw fail(std::string("REDUCE calls ") + kind_name(callable->kind));
        if (args->kind != Kind::tuple) throw fail(std::string("REDUCE's arguments are ") + kind_name(args->kind));
        const std::vector<Ref>& a = args->items;
        const std::string who = quote(callable->text);
        auto arity = [&](std::size_t low, std::size_t high) {
            if (a.size() < low || a.size() > high) {
                throw fail(who + " is called with " + std::to_string(a.size()) + " arguments");
            }
        };
        switch (callable->callable) {
        case Callable::ordered_dict:
            arity(0, 0);
            push(make(Kind::dict));
            return;
        case Callable::rebuild_tensor_v2:
            arity(6, 7);
            push(rebuild_tensor(a, who));
            return;
        case Callable::rebuild_tensor:
            arity(4, 4);
            push(rebuild_tensor(a, who));
            return;
        case Callable::rebuild_parameter:
        case Callable::rebuild_parameter_with_state:
            arity(3, 4);
            if (a[0]->kind != Kind::tensor) throw fail(who + "'s data is " + kind_name(a[0]->kind));
            push(a[0]);
            return;
        case Callable::size:
            arity(1, 1);
            indices(a[0], "size");
            push(a[0]);
            return;
        case Callable::storage_type:
            throw fail("the pickle calls the storage type " + who + " (storages load only by persistent id)");
        }
    }

    void persistent_load()
    {
        const Ref pid = pop();
        const std::vector<Ref>* f = pid->kind == Kind::tuple ? &pid->items : nullptr;
        if (f == nullptr || f->size() != 5 || (*f)[0]->kind != Kind::string || (*f)[0]->text != "storage") {
            throw fail("a persistent id is not ('storage', type, key, location, numel)");
        }
        const Ref& type = (*f)[1];
        if (type->kind != Kind::global || type->callable != Callable::storage_type) {
            throw fail("a persistent id's storage type is not a torch storage type");
        }
        if ((*f)[2]->kind != Kind::string || (*f)[3]->kind != Kind::string) {
            throw fail("a persistent id's key or location is not a str");
        }
        if (!is_index((*f)[4])) throw fail("a persistent id's element count is not an int >= 0");
        const std::string& key = (*f)[2]->text;
        const auto numel = static_cast<std::uint64_t>((*f)[4]->integer);
        const auto known = storages_.find(key);
        if (known != storages_.end()) {
            if (known->second->storage_type != type->storage_type || known->second->numel != numel) {
                throw fail("storage " + quote(key) + " is declared twice, with different types or sizes");
            }
            push(known->second);
            return;
        }
        Ref s = make(Kind::storage);
        s->text = key;
        s->storage_type = type->storage_type;
        s->numel = numel;
        storages_.emplace(key, s);
        push(s);
    }

    void step(unsigned char op)
    {
        switch (op) {
        case 0x80: {  // PROTO
            const unsigned protocol = *take(1);
            if (protocol > 5) throw fail("unknown pickle protocol " + std::to_string(protocol));
            return;
        }
        case 0x95:  // FRAME (protocol 4): only a length hint
            take(8);
            return;
        case '(':  // MARK
            marks_.push_back(stack_.size());
            return;
        case '}':  // EMPTY_DICT
            push(make(Kind::dict));
            return;
        case ']':  // EMPTY_LIST
            push(make(Kind::list));
            return;
        case ')':  // EMPTY_TUPLE
            push(tuple({}));
            return;
        case 't':  // TUPLE
            push(tuple(pop_mark()));
            return;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
            std::vector<Ref> items(op - 0x84);
            for (std::size_t i = items.size(); i-- > 0;) items[i] = pop();
            push(tuple(std::move(items)));
            return;
        }
        case 'N':
            push(make(Kind::none));
            return;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
            Ref v = make(Kind::boolean);
            v->boolean = op == 0x88;
            push(v);
            return;
        }
        case 'J':  // BININT
            push_int(static_cast<std::int32_t>(take_le<std::uint32_t>()));
            return;
        case 'K':  // BININT1
            push_int(*take(1));
            return;
        case 'M':  // BININT2
            push_int(take_le<std::uint16_t>());
            return;
        case 0x8a: {  // LONG1: n bytes, little-endian two's complement
            const std::size_t n = *take(1);
            if (n > 8) throw fail("an int of " + std::to_string(n) + " bytes is too large (at most 8)");
            const unsigned char* p = take(n);
            std::uint64_t u = 0;
            for (std::size_t i = n; i-- > 0;) u = (u << 8) | p[i];
            if (n > 0 && n < 8 && (p[n - 1] & 0x80) != 0) u |= ~std::uint64_t{0} << (8 * n);
            std::int64_t i = 0;
            std::memcpy(&i, &u, sizeof i);
            push_int(i);
            return;
        }
        case 'G': {  // BINFLOAT: big-endian
            const unsigned char* p = take(8);
            std::uint64_t u = 0;
            for (std::size_t i = 0; i < 8; ++i) u = (u << 8) | p[i];
            Ref v = make(Kind::real);
            std::memcpy(&v->real, &u, sizeof u);
            push(v);
            return;
        }
        case 'X': {  // BINUNICODE
            const std::size_t n = take_le<std::uint32_t>();
            const unsigned char* p = take(n);
            push_string(std::string(reinterpret_cast<const char*>(p), n));
            return;
        }
        case 0x8c: {  // SHORT_BINUNICODE
            const std::size_t n = *take(1);
            const unsigned char* p = take(n);
            push_string(std::string(reinterpret_cast<const char*>(p), n));
            return;
        }
        case 'U': {  // SHORT_BINSTRING (bytes; text here, as keys must be)
            const std::size_t n = *take(1);
            const unsigned char* p = take(n);
            push_string(std::string(reinterpret_cast<const char*>(p), n));
            return;
        }
        case 'q':  // BINPUT
            memo_[*take(1)] = top();
            return;
        case 'r':  // LONG_BINPUT
            memo_[take_le<std::uint32_t>()] = top();
            return;
        case 0x94:  // MEMOIZE
            memo_[static_cast<std::uint32_t>(memo_.size())] = top();
            return;
        case 'h':
        case 'j': {  // BINGET, LONG_BINGET
            const std::uint32_t i = op == 'h' ? *take(1) : take_le<std::uint32_t>();
            const auto it = memo_.find(i);
            if (it == memo_.end()) throw fail("the pickle gets memo entry " + std::to_string(i) + ", which is not set");
            push(it->second);
            return;
        }
        case 'a': {  // APPEND
            Ref item = pop();
            Value& list = *top();
            if (list.kind != Kind::list) throw fail(std::string("APPEND to ") + kind_name(list.kind));
            list.items.push_back(item);
            return;
        }
        case 'e': {  // APPENDS
            std::vector<Ref> items = pop_mark();
            Value& list = *top();
            if (list.kind != Kind::list) throw fail(std::string("APPENDS to ") + kind_name(list.kind));
            list.items.insert(list.items.end(), items.begin(), items.end());
            return;
        }
        case 's': {  // SETITEM
            Ref value = pop();
            Ref key = pop();
            set_item(*top(), key, value);
            return;
        }
        case 'u': {  // SETITEMS
            std::vector<Ref> items = pop_mark();
            if (items.size() % 2 != 0) throw fail("SETITEMS has a key without a value");
            Value& dict = *top();
            for (std::size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
            return;
        }
        case 'c':  // GLOBAL
            global();
            return;
        case 'R':  // REDUCE
            reduce();
            return;
        case 'b': {  // BUILD: only a dict's attributes (a state_dict's _metadata)
            Ref state = pop();
            Value& inst = *top();
            if (inst.kind != Kind::dict || state->kind != Kind::dict) {
                throw fail(std::string("BUILD sets the state of ") + kind_name(inst.kind) + " from " +
                           kind_name(state->kind) + " (only a dict's attributes are set)");
            }
            for (auto& [k, v] : state->dict->entries) {
                if (k->kind != Kind::string) throw fail("BUILD sets an attribute whose name is not a str");
                inst.dict->attributes.emplace_back(k->text, v);
            }
            return;
        }
        case 'Q':  // BINPERSID
            persistent_load();
            return;
        default: {
            char text[64];
            if (op >= 0x20 && op < 0x7f) {
                std::snprintf(text, sizeof text, "unknown or unsupported pickle opcode 0x%02x ('%c')", op, op);
            } else {
                std::snprintf(text, sizeof text, "unknown or unsupported pickle opcode 0x%02x", op);
            }
            throw fail(text);
        }
        }
    }

    const std::string& data_;
    std::string where_;
    Arena& arena_;
    std::size_t pos_ = 0, op_at_ = 0;
    std::vector<Ref> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint32_t, Ref> memo_;
    std::map<std::string, Ref> storages_;
};

// --- from values to a File ------------------------------------------------------------

constexpr int max_depth = 200;

class Flattener {
public:
    Flattener(const detail::ZipReader& zip, std::string prefix, bool big_endian, std::uint64_t archive_size,
              std::uint64_t pickle_size, std::string where)
        : zip_(zip), prefix_(std::move(prefix)), big_endian_(big_endian), where_(std::move(where)),
          tensor_budget_(2 * archive_size + (std::uint64_t{64} << 20)), text_budget_(64 * pickle_size + (16u << 20))
    {}

    File run(Ref root)
    {
        visit(*root, "", true, 0);
        if (root->kind == Kind::dict) {
            for (const auto& [name, value] : root->dict->attributes) {
                if (name != "tapegrad_metadata") continue;  // e.g. a state_dict's _metadata: versions
                if (value->kind != Kind::dict) throw fail("the attribute tapegrad_metadata is not a dict");
                for (const auto& [k, v] : value->dict->entries) {
                    if (k->kind != Kind::string || v->kind != Kind::string) {
                        throw fail("the attribute tapegrad_metadata does not map str to str");
                    }
                    spend_text(k->text.size() + v->text.size());
                    if (!file_.metadata.emplace(k->text, v->text).second) {
                        throw fail("metadata key " + quote(k->text) + " appears twice (in tapegrad_metadata too)");
                    }
                }
            }
        }
        return std::move(file_);
    }

private:
    Error fail(const std::string& what) const { return Error(where_ + ": " + what); }

    void spend_text(std::uint64_t n)
    {
        if (n > text_budget_) {
            throw fail("the pickle's keys and values expand to too much text (an object shared many times over?)");
        }
        text_budget_ -= n;
    }

    std::string key_text(const Value& k, const std::string& at) const
    {
        if (!is_key_kind(k.kind)) throw fail("a dict at " + quote(at) + " has a key that is " + kind_name(k.kind));
        return leaf_text(k);
    }

    void visit(const Value& v, const std::string& key, bool top, int depth)
    {
        if (depth > max_depth) {
            throw fail("the object nests deeper than " + std::to_string(max_depth) + " levels at " + quote(key) +
                       " (a structure that contains itself?)");
        }
        auto child = [&](const std::string& k) { return top ? k : key + "." + k; };
        switch (v.kind) {
        case Kind::dict:
            for (const auto& [k, item] : v.dict->entries) {
                const std::string name = child(key_text(*k, key));
                spend_text(name.size());
                visit(*item, name, false, depth + 1);
            }
            return;
        case Kind::list:
        case Kind::tuple:
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                const std::string name = child(std::to_string(i));
                spend_text(name.size());
                visit(*v.items[i], name, false, depth + 1);
            }
            return;
        case Kind::tensor:
            if (file_.tensors.count(key) != 0) {
                throw fail("tensor key " + quote(key) + " appears twice (nested keys joined with '.' collide)");
            }
            file_.tensors.emplace(key, tensor(*v.view, key));
            return;
        case Kind::global:
            throw fail("the value at " + quote(key) + " is the global " + quote(v.text) + " itself, not data");
        case Kind::storage:
            throw fail("the value at " + quote(key) + " is a storage outside a tensor");
        default: {
            std::string text = leaf_text(v);
            spend_text(text.size());
            if (!file_.metadata.emplace(key, std::move(text)).second) {
                throw fail("key " + quote(key) + " appears twice (nested keys joined with '.' collide)");
            }
        }
        }
    }

    // The bytes of a storage, little-endian, read once however many tensors share it.
    const std::string& storage_bytes(const Value& s, std::size_t element, const std::string& who)
    {
        const auto cached = storages_.find(s.text);
        if (cached != storages_.end()) return cached->second;
        const std::string name = prefix_ + "data/" + s.text;
        const detail::ZipEntry* entry = zip_.find(name);
        if (entry == nullptr) throw fail(who + ": its storage " + quote(name) + " is not in the archive");
        std::uint64_t want = 0;
        if (__builtin_mul_overflow(s.numel, element, &want)) {
            throw fail(who + ": its storage " + quote(name) + " declares " + std::to_string(s.numel) +
                       " elements, too many");
        }
        if (entry->size != want) {
            throw fail(who + ": its storage " + quote(name) + " holds " + std::to_string(entry->size) +
                       " bytes, but data.pkl declares " + std::to_string(s.numel) + " elements of " +
                       s.storage_type->torch_dtype + " (" + std::to_string(want) + " bytes)");
        }
        std::string bytes = zip_.read(*entry);
        if (big_endian_ && element > 1) {
            for (std::size_t i = 0; i + element <= bytes.size(); i += element)
                std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(i),
                             bytes.begin() + static_cast<std::ptrdiff_t>(i + element));
        }
        return storages_.emplace(s.text, std::move(bytes)).first->second;
    }

    Tensor tensor(const View& v, const std::string& key)
    {
        const std::string who = "tensor " + quote(key);
        const Value& s = *v.storage;
        if (!s.storage_type->dtype) {
            throw fail(who + " has dtype " + s.storage_type->torch_dtype +
                       ", which is not loaded (float32, float64, float16, bfloat16, int64, int32, int16, int8, "
                       "uint8 and bool are)");
        }
        Tensor t;
        t.dtype = *s.storage_type->dtype;
        const std::size_t element = dtype_size(t.dtype);
        t.shape.assign(v.shape.begin(), v.shape.end());
        const auto bytes = detail::byte_count(t.shape, t.dtype);
        if (!bytes) throw fail(who + ": shape " + format_shape(t.shape) + " has too many elements");
        const std::string& data = storage_bytes(s, element, who);
        if (*bytes == 0) return t;  // PyTorch checks no storage bounds for an empty tensor

        // The last element the view reaches must lie inside the storage.
        std::uint64_t last = v.offset;
        bool overflow = false;
        for (std::size_t d = 0; d < v.shape.size(); ++d) {
            std::uint64_t reach = 0;
            overflow |= __builtin_mul_overflow(v.shape[d] - 1, v.strides[d], &reach);
            overflow |= __builtin_add_overflow(last, reach, &last);
        }
        const std::string view = "the view (size " + format_shape(v.shape) + ", stride " + format_shape(v.strides) +
                                 ", offset " + std::to_string(v.offset) + ")";
        if (overflow || last >= s.numel) {
            throw fail(who + ": " + view + " reaches " +
                       (overflow ? std::string("beyond any storage") : "element " + std::to_string(last)) +
                       ", but its storage " + quote(prefix_ + "data/" + s.text) + " holds " + std::to_string(s.numel) +
                       " elements");
        }
        if (*bytes > tensor_budget_) {
            throw fail(who + ": the tensors' views add up to more bytes than the file can account for (" +
                       std::to_string(*bytes) + " bytes more, storages shared many times over?)");
        }
        tensor_budget_ -= *bytes;

        t.bytes.resize(*bytes);
        const auto* src = reinterpret_cast<const unsigned char*>(data.data());
        // Row-major with the view's strides; contiguous runs of the last dim copied at once.
        const std::size_t rank = v.shape.size();
        const std::uint64_t inner = rank == 0 ? 1 : v.shape[rank - 1];
        const std::uint64_t inner_stride = rank == 0 ? 1 : v.strides[rank - 1];
        std::vector<std::uint64_t> at(rank, 0);
        std::uint64_t base = v.offset;
        unsigned char* out = t.bytes.data();
        const std::size_t rows = *bytes / element / inner;
        for (std::size_t r = 0; r < rows; ++r) {
            if (inner_stride == 1) {
                std::memcpy(out, src + base * element, inner * element);
                out += inner * element;
            } else {
                for (std::uint64_t i = 0; i < inner; ++i, out += element)
                    std::memcpy(out, src + (base + i * inner_stride) * element, element);
            }
            // Next row: the odometer over every dim but the last.
            for (std::size_t d = rank - (rank == 0 ? 0 : 1); d-- > 0;) {
                base += v.strides[d];
                if (++at[d] < v.shape[d]) break;
                base -= v.strides[d] * v.shape[d];
                at[d] = 0;
            }
        }
        return t;
    }

    const detail::ZipReader& zip_;
    std::string prefix_;
    bool big_endian_;
    std::string where_;
    std::uint64_t tensor_budget_, text_budget_;
    std::map<std::string, std::string> storages_;
    File file_;
};

// The first bytes of a pickle of the legacy format's magic number (protocol 2, LONG1).
const char legacy_magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

bool is_legacy(const std::string& bytes)
{
    const std::size_t n = sizeof legacy_magic - 1;
    if (bytes.compare(0, n, legacy_magic, n) == 0) return true;
    return bytes.size() > 262 && bytes.compare(257, 5, "ustar") == 0;  // the tar format of PyTorch < 0.4
}

File parse_torch_as(const std::string& bytes, const std::string& where)
{
    if (is_legacy(bytes)) {
        throw Error(where + ": the file is in PyTorch's legacy format (torch.save before PyTorch 1.6, or with "
                            "_use_new_zipfile_serialization=False), which is not read; convert it in Python with "
                            "torch.save(torch.load(path), path, _use_new_zipfile_serialization=True)");
    }
    const detail::ZipReader zip(bytes, where);
    if (zip.entries().empty()) throw Error(where + ": the zip archive is empty: not a torch.save file");
    const std::string& first = zip.entries().front().name;
    const std::size_t slash = first.find('/');
    if (slash == std::string::npos || slash == 0) {
        throw Error(where + ": the archive's first entry " + quote(first) +
                    " lies in no folder: not a torch.save file");
    }
    const std::string prefix = first.substr(0, slash + 1);
    const detail::ZipEntry* pickle = zip.find(prefix + "data.pkl");
    if (pickle == nullptr) {
        throw Error(where + ": the archive has no " + quote(prefix + "data.pkl") +
                    ": not a torch.save file (or it is truncated)");
    }
    bool big_endian = false;
    if (const detail::ZipEntry* order = zip.find(prefix + "byteorder")) {
        const std::string text = zip.read(*order);
        if (text != "little" && text != "big") {
            throw Error(where + ": " + quote(prefix + "byteorder") + " is neither \"little\" nor \"big\"");
        }
        big_endian = text == "big";
    }
    const std::string data = zip.read(*pickle);
    Arena arena;
    const Ref root = Unpickler(data, where + ": data.pkl", arena).load();
    return Flattener(zip, prefix, big_endian, bytes.size(), data.size(), where).run(root);
}

// --- writing --------------------------------------------------------------------------

class Pickler {
public:
    void op(unsigned char c) { out_ += static_cast<char>(c); }

    void integer(std::int64_t v)
    {
        if (v >= 0 && v < 256) {
            op('K');
            op(static_cast<unsigned char>(v));
        } else if (v >= 0 && v < 65536) {
            op('M');
            le(static_cast<std::uint64_t>(v), 2);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            le(static_cast<std::uint64_t>(v), 4);
        } else {
            // LONG1: the fewest bytes of two's complement that keep the sign.
            std::uint64_t u = 0;
            std::memcpy(&u, &v, sizeof u);
            std::size_t n = 8;
            while (n > 1) {
                const auto high = static_cast<unsigned char>(u >> (8 * (n - 1)));
                const bool sign_next = ((u >> (8 * (n - 2) + 7)) & 1) != 0;
                if ((high == 0 && !sign_next) || (high == 0xff && sign_next)) {
                    --n;
                } else {
                    break;
                }
            }
            op(0x8a);
            op(static_cast<unsigned char>(n));
            le(u, n);
        }
    }

    void string(const std::string& s)
    {
        op('X');
        le(s.size(), 4);
        out_ += s;
    }

    // A global, memoized: written once, fetched after.
    void global(const std::string& module, const std::string& name)
    {
        const std::string full = module + "\n" + name + "\n";
        const auto it = memo_.find(full);
        if (it != memo_.end()) {
            op('h');
            op(static_cast<unsigned char>(it->second));
            return;
        }
        op('c');
        out_ += full;
        const std::size_t index = memo_.size();
        memo_.emplace(full, index);
        op('q');
        op(static_cast<unsigned char>(index));
    }

    void sizes(const std::vector<std::uint64_t>& values)
    {
        if (values.empty()) {
            op(')');
            return;
        }
        op('(');
        for (std::uint64_t v : values) integer(static_cast<std::int64_t>(v));
        op('t');
    }

    std::string& bytes() { return out_; }

private:
    void le(std::uint64_t v, std::size_t n)
    {
        for (std::size_t i = 0; i < n; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
    }

    std::string out_;
    std::map<std::string, std::size_t> memo_;  // at most a dozen globals
};

std::string serialize_torch_as(const File& file, const std::string& where)
{
    constexpr auto int64_max = static_cast<std::uint64_t>(INT64_MAX);
    Pickler p;
    p.op(0x80);
    p.op(2);
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    std::vector<detail::ZipInput> entries;
    entries.push_back({"archive/data.pkl", nullptr, 0});
    static const std::string byteorder = "little", version = "3\n";
    entries.push_back({"archive/byteorder", reinterpret_cast<const unsigned char*>(byteorder.data()), 6});
    std::size_t key = 0;
    for (const auto& [k, v] : file.metadata) {
        if (!valid_utf8(k) || !valid_utf8(v)) throw Error(where + ": a metadata entry is not valid UTF-8");
    }
    for (const auto& [name, t] : file.tensors) {
        if (!valid_utf8(name)) throw Error(where + ": a tensor name is not valid UTF-8");
        detail::check_bytes(t, where + ": tensor " + quote(name));
        std::vector<std::uint64_t> strides(t.shape.size());
        std::uint64_t stride = 1;
        for (std::size_t d = t.shape.size(); d-- > 0;) {
            if (t.shape[d] > int64_max) {
                throw Error(where + ": tensor " + quote(name) + " has shape " + format_shape(t.shape) +
                            ", larger than PyTorch's sizes");
            }
            strides[d] = stride;
            stride *= std::max<std::uint64_t>(t.shape[d], 1);  // PyTorch's strides for a zero dim
        }
        const std::string storage_key = std::to_string(key++);
        p.string(name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.op('(');
        p.op('(');
        p.string("storage");
        p.global("torch", storage_type_of(t.dtype).name);
        p.string(storage_key);
        p.string("cpu");
        p.integer(static_cast<std::int64_t>(t.bytes.size() / dtype_size(t.dtype)));
        p.op('t');
        p.op('Q');
        p.integer(0);
        p.sizes(std::vector<std::uint64_t>(t.shape.begin(), t.shape.end()));
        p.sizes(strides);
        p.op(0x89);  // requires_grad False
        p.global("collections", "OrderedDict");
        p.op(')');
        p.op('R');
        p.op('t');
        p.op('R');
        p.op('s');
        entries.push_back({"archive/data/" + storage_key, t.bytes.data(), t.bytes.size()});
    }
    if (!file.metadata.empty()) {
        p.op('}');
        p.string("tapegrad_metadata");
        p.op('}');
        for (const auto& [k, v] : file.metadata) {
            p.string(k);
            p.string(v);
            p.op('s');
        }
        p.op('s');
        p.op('b');
    }
    p.op('.');
    const std::string& pickle = p.bytes();
    entries[0].data = reinterpret_cast<const unsigned char*>(pickle.data());
    entries[0].size = pickle.size();
    entries.push_back({"archive/version", reinterpret_cast<const unsigned char*>(version.data()), version.size()});
    return detail::zip_archive(entries, force_zip64_writes, where);
}

}  // namespace

namespace detail {

bool looks_like_torch(const std::string& bytes)
{
    return bytes.compare(0, 2, "PK") == 0 || is_legacy(bytes);
}

File load_by_content(const std::string& path)
{
    const std::string bytes = read_file(path, path);
    if (looks_like_torch(bytes)) return parse_torch_as(bytes, "load_torch: " + path);
    return parse(bytes, path);
}

void force_zip64(bool on)
{
    force_zip64_writes = on;
}

}  // namespace detail

File parse_torch(const std::string& bytes, const std::string& source)
{
    return parse_torch_as(bytes, "parse_torch: " + source);
}

File load_torch(const std::string& path)
{
    const std::string where = "load_torch: " + path;
    return parse_torch_as(detail::read_file(path, where), where);
}

std::string serialize_torch(const File& file)
{
    return serialize_torch_as(file, "serialize_torch");
}

void save_torch(const std::string& path, const File& file)
{
    const std::optional<std::size_t> fail_after = detail::take_write_failure();
    const std::string where = "save_torch: " + path;
    detail::write_atomically(path, serialize_torch_as(file, where), fail_after, where);
}

}  // namespace tg::io
