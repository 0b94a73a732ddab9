// What the C API's functions share: one try_catch that turns every
// exception into a lindra_error, argument checks, and Block, which lays a
// result out in one malloc'd block so one free() releases it.
#pragma once

#include <lindra/error.hpp>
#include <lindra/id.hpp>
#include <lindra/lindra.h>
#include <lindra/replica.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace lindra::capi {

inline void set_error(lindra_error* error, lindra_errc code, std::string_view message, int sqlite_code = 0,
                      std::string_view field = {}) noexcept {
    if (!error) return;
    error->code = code;
    error->sqlite_code = sqlite_code;
    const auto copy = [](char* out, std::size_t size, std::string_view text) {
        const std::size_t n = std::min(size - 1, text.size());
        if (n > 0) std::memcpy(out, text.data(), n);  // an empty view's data() may be null
        out[n] = '\0';
    };
    copy(error->field, sizeof error->field, field);
    copy(error->message, sizeof error->message, message);
}

// Runs `body`; true if it returned, false with `error` set if it threw.
template <class F>
bool try_catch(lindra_error* error, F&& body) noexcept {
    try {
        body();
        set_error(error, LINDRA_OK, {});
        return true;
    } catch (const Error& e) {
        set_error(error, static_cast<lindra_errc>(e.errc()), e.what(), e.sqlite_code(), e.field());
    } catch (const std::bad_alloc&) {
        set_error(error, LINDRA_ERR_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        set_error(error, LINDRA_ERR_INTERNAL, e.what());
    } catch (...) {
        set_error(error, LINDRA_ERR_INTERNAL, "unknown failure");
    }
    return false;
}

template <class T>
T& need(T* p, const char* what) {
    if (!p) throw Error(Errc::invalid_argument, std::string(what) + " must not be NULL");
    return *p;
}
// Text the call cannot do without.
inline const char* need(const char* s, const char* what) {
    if (!s) throw Error(Errc::invalid_argument, std::string(what) + " must not be NULL");
    return s;
}
inline std::string text(const char* s) {
    return s ? std::string(s) : std::string();
}
inline std::string need_text(const char* s, const char* what) {
    return need(s, what);
}

inline Id id(const lindra_id& c) noexcept {
    Id out;
    std::memcpy(out.bytes.data(), c.bytes, 16);
    return out;
}
inline Id id(const lindra_id* c, const char* what) {
    return id(need(c, what));
}
// NULL or the nil id: none.
inline std::optional<Id> optional_id(const lindra_id* c) {
    if (!c) return std::nullopt;
    Id out = id(*c);
    return out.is_nil() ? std::nullopt : std::optional<Id>(out);
}
inline lindra_id to_c(const Id& in) noexcept {
    lindra_id out;
    std::memcpy(out.bytes, in.bytes.data(), 16);
    return out;
}
inline lindra_id to_c(const std::optional<Id>& in) noexcept {
    return in ? to_c(*in) : lindra_id{};
}

// A copy of `text` the caller owns and frees with lindra_string_free.
inline char* owned_string(const std::string& text) {
    auto* out = static_cast<char*>(std::malloc(text.size() + 1));
    if (!out) throw std::bad_alloc();
    std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
}

// A C enum value as the C++ enum of the same order; out of range is bad input.
template <class E>
E to_enum(int value, int count, const char* what) {
    if (value < 0 || value >= count)
        throw Error(Errc::bad_enum_value, std::string(what) + " " + std::to_string(value) + " is not one of 0.." +
                                              std::to_string(count - 1));
    return static_cast<E>(value);
}
// An optional C++ enum as a C enum whose -1 is "none".
template <class C, class E>
C to_c_enum(const std::optional<E>& value) noexcept {
    return static_cast<C>(value ? static_cast<int>(*value) : -1);
}

// Lays a result out in one block: the root struct first, then what it
// points to. build() runs `fill` twice, first into scratch memory to
// measure, then into the block, so the layout is written once.
class Block {
  public:
    Block() = default;  // measuring
    explicit Block(std::size_t size) : base_(static_cast<std::byte*>(std::malloc(size))), capacity_(size) {
        if (!base_) throw std::bad_alloc();
    }
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    ~Block() { std::free(base_); }  // unless released

    template <class T>
    T* alloc(std::size_t n) {
        static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
        std::byte* p = take(sizeof(T) * n, alignof(T));
        return std::uninitialized_value_construct_n(reinterpret_cast<T*>(p), n), reinterpret_cast<T*>(p);
    }
    const char* str(std::string_view s) {
        auto* p = reinterpret_cast<char*>(take(s.size() + 1, 1));
        if (!s.empty()) std::memcpy(p, s.data(), s.size());
        p[s.size()] = '\0';
        return p;
    }
    std::size_t size() const noexcept { return used_; }
    std::byte* release() noexcept { return std::exchange(base_, nullptr); }

  private:
    std::byte* take(std::size_t bytes, std::size_t align) {
        used_ = (used_ + align - 1) / align * align;
        std::byte* p;
        if (base_) {
            if (used_ + bytes > capacity_) throw std::logic_error("lindra C API: a result outgrew its measure");
            p = base_ + used_;
        } else {
            scratch_.push_back(std::make_unique<std::byte[]>(bytes + 1));
            p = scratch_.back().get();
        }
        used_ += bytes;
        return p;
    }

    std::byte* base_ = nullptr;
    std::size_t capacity_ = 0, used_ = 0;
    std::vector<std::unique_ptr<std::byte[]>> scratch_;
};

// Values as C, in `b` (a refused write's); text is NULL but for text values.
inline const lindra_field_value* put_values(Block& b, const std::vector<FieldValue>& values) {
    auto* out = b.alloc<lindra_field_value>(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        auto& o = out[i];
        o.field = b.str(values[i].field);
        const Value& v = values[i].value;
        if (const auto* n = std::get_if<std::int64_t>(&v)) {
            o.kind = LINDRA_VALUE_INTEGER;
            o.integer = *n;
        } else if (const auto* t = std::get_if<std::string>(&v)) {
            o.kind = LINDRA_VALUE_TEXT;
            o.text = b.str(*t);
        } else if (const auto* r = std::get_if<Id>(&v)) {
            o.kind = LINDRA_VALUE_ID;
            o.id = to_c(*r);
        } else {
            o.kind = LINDRA_VALUE_NULL;
        }
    }
    return out;
}

// `fill(Block&)` allocates the root first and returns it.
template <class Fill>
auto build(Fill&& fill) {
    Block measure;
    fill(measure);
    Block block(std::max<std::size_t>(measure.size(), 1));
    auto* root = fill(block);
    block.release();  // the root is at its start: freeing the root frees it
    return root;
}

// A list struct {count, items} of C items, each filled by put(block, item, value).
template <class List, class Vec>
List* build_list(const Vec& values) {
    return build([&](Block& b) {
        auto* list = b.alloc<List>(1);
        list->count = values.size();
        list->items = b.alloc<std::remove_pointer_t<decltype(list->items)>>(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) put(b, list->items[i], values[i]);
        return list;
    });
}
// One C struct for an optional C++ value; NULL for none.
template <class C, class T>
C* build_one(const std::optional<T>& value) {
    if (!value) return nullptr;
    return build([&](Block& b) {
        auto* out = b.alloc<C>(1);
        put(b, *out, *value);
        return out;
    });
}

}  // namespace lindra::capi
