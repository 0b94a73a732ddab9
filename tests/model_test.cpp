#include "core/codec.hpp"
#include "model/ddl.hpp"
#include "model/row.hpp"

#include <lindra/replica.hpp>
#include <lindra/schema.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <set>

using namespace lindra;

TEST_CASE("the schema table is well formed") {
    std::set<std::uint16_t> entity_tags;
    std::set<std::string_view> names;
    for (const auto& e : entities()) {
        INFO(e.name);
        CHECK(entity_tags.insert(e.tag).second);
        CHECK(names.insert(e.name).second);
        CHECK(find_entity(e.name) == &e);
        CHECK(find_entity(e.tag) == &e);
        REQUIRE(!e.fields.empty());
        // Core::write relies on the tombstone being the first field.
        CHECK(e.fields[0].name == kDeletedField);
        CHECK(e.fields[0].rule == MergeRule::tombstone);
        std::set<std::uint16_t> field_tags;
        int keys = 0;
        for (const auto& f : e.fields) {
            INFO(f.name);
            CHECK(field_tags.insert(f.tag).second);
            CHECK(e.field(f.name) == &f);
            CHECK(e.field(f.tag) == &f);
            if (f.type == FieldType::enumeration || f.type == FieldType::progress) CHECK(!f.values.empty());
            if (f.type == FieldType::ref) CHECK(find_entity(f.ref_entity) != nullptr);
            if (f.type == FieldType::text) CHECK(f.max > 0);
            keys += f.key;
        }
        CHECK(e.derived_id == (keys > 0));
        if (!e.label_field.empty()) CHECK(e.field(e.label_field) != nullptr);
        if (!e.group_field.empty()) CHECK(e.field(e.group_field) != nullptr);
        if (!e.person_field.empty()) CHECK(e.field(e.person_field) != nullptr);
    }
    CHECK(entities().size() == 15);
}

TEST_CASE("typed enums match the schema's value lists in order") {
    auto check = [](auto last, std::string_view entity, std::string_view field) {
        using E = decltype(last);
        const auto& values = find_entity(entity)->field(field)->values;
        REQUIRE(values.size() == static_cast<std::size_t>(last) + 1);
        for (std::size_t i = 0; i < values.size(); ++i) {
            CHECK(to_string(static_cast<E>(i)) == values[i]);
            CHECK(parse_enum<E>(values[i]) == static_cast<E>(i));
        }
        CHECK_FALSE(parse_enum<E>("no such value").has_value());
    };
    check(OrganizationKind::care_unit, "organization", "kind");
    check(Profession::other, "person", "profession");
    check(ModuleKind::practice, "module", "kind");
    check(GroupStatus::cancelled, "mentor_group", "status");
    check(MemberRole::candidate, "membership", "role");
    check(MemberStatus::completed, "membership", "status");
    check(GatheringMode::digital, "gathering", "mode");
    check(GatheringStatus::cancelled, "gathering", "status");
    check(AttendanceStatus::excused, "attendance", "status");
    check(ProgressStatus::passed, "module_progress", "progress");
}

TEST_CASE("the DDL of each schema version creates its entities' tables and adds its fields") {
    for (std::uint16_t version = 1; version <= schema_version(); ++version) {
        const auto ddl = model::domain_ddl(version);
        for (const auto& e : entities()) {
            INFO("version " << version << ", " << e.name);
            const auto create = "CREATE TABLE " + std::string(e.name) + " (";
            const auto it =
                std::find_if(ddl.begin(), ddl.end(), [&](const std::string& s) { return s.starts_with(create); });
            if (e.since != version) {  // made by another version
                CHECK(it == ddl.end());
                for (const auto& f : e.fields) {
                    const auto alter =
                        "ALTER TABLE " + std::string(e.name) + " ADD COLUMN " + std::string(f.name) + " ";
                    const bool added =
                        std::any_of(ddl.begin(), ddl.end(), [&](const std::string& s) { return s.starts_with(alter); });
                    CHECK(added == (e.since < version && f.since == version));
                }
                continue;
            }
            REQUIRE(it != ddl.end());
            CHECK(it->find("lindra_clocks BLOB NOT NULL") != std::string::npos);
            CHECK(it->ends_with("WITHOUT ROWID"));
            for (const auto& f : e.fields)
                for (const auto& c : model::columns_of(f))
                    CHECK((it->find(" " + c + " ") != std::string::npos) == (f.since <= version));
        }
    }
    CHECK(model::domain_ddl(schema_version() + 1).empty());
}

TEST_CASE("codec round-trips values and varints and rejects truncated input") {
    codec::Writer w;
    const Value values[] = {
        std::monostate{}, std::int64_t{-5}, std::int64_t{INT64_MAX}, std::int64_t{INT64_MIN}, std::string("Mia Mentor"),
        std::string(),    Id::random()};
    for (const auto& v : values) w.value(v);
    w.varint(UINT64_MAX);
    w.fixed64(0x0102030405060708);
    const auto bytes = w.take();
    const auto span = std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    codec::Reader r(span);
    for (const auto& v : values) CHECK(r.value() == v);
    CHECK(r.varint() == UINT64_MAX);
    CHECK(r.fixed64() == 0x0102030405060708);
    CHECK(r.done());
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        codec::Reader partial(span.first(cut));
        auto read_all = [&] {
            for (std::size_t i = 0; i < std::size(values); ++i) partial.value();
            partial.varint();
            partial.fixed64();
        };
        CHECK_THROWS_AS(read_all(), Error);
    }
}

TEST_CASE("row clocks encode canonically and round-trip") {
    const auto& e = *find_entity("module_progress");
    const auto& store = model::row_store(e);
    std::mt19937_64 rng(42);
    const Id a = Id::random(), b = Id::random(), c = Id::random();
    for (int round = 0; round < 200; ++round) {
        model::RowState s = store.empty();
        for (std::size_t i = 0; i < e.fields.size(); ++i) {
            if (rng() % 3 == 0) continue;
            const Id& o = (rng() % 2) ? a : b;
            s.fields[i].clock = {1 + rng() % 4, o};  // few distinct clocks so fields share them
            if (e.fields[i].rule == MergeRule::counter) s.fields[i].totals = {{std::min(a, c), 7}, {std::max(a, c), 9}};
        }
        const auto blob = model::RowStore::encode_clocks(e, s);
        model::RowState back = store.empty();
        model::RowStore::decode_clocks(e, std::span(reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size()),
                                       back);
        for (std::size_t i = 0; i < e.fields.size(); ++i) {
            CHECK(back.fields[i].clock == s.fields[i].clock);
            CHECK(back.fields[i].totals == s.fields[i].totals);
        }
        CHECK(model::RowStore::encode_clocks(e, back) == blob);
    }
}

TEST_CASE("a varint longer than 64 bits is malformed") {
    const std::uint8_t too_long[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02};
    codec::Reader r(too_long);
    CHECK_THROWS_AS(r.varint(), Error);
    const std::uint8_t max[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    codec::Reader ok(max);
    CHECK(ok.varint() == UINT64_MAX);
}

TEST_CASE("only canonical clocks decode: unsorted origins would break counter merging") {
    const auto& e = *find_entity("module_progress");
    const auto& store = model::row_store(e);
    const auto& counter = *e.field("time_spent_s");
    const Id a = Id::parse("00000000-0000-4000-8000-00000000000a").value();
    const Id b = Id::parse("00000000-0000-4000-8000-00000000000b").value();
    auto blob = [&](const Id& first, const Id& second, std::uint64_t i1, std::uint64_t i2) {
        codec::Writer w;
        w.varint(2);
        w.bytes(first.bytes);
        w.bytes(second.bytes);
        w.varint(0);  // no clocks
        w.varint(counter.tag);
        w.varint(2);
        w.varint(i1);
        w.svarint(10);
        w.varint(i2);
        w.svarint(20);
        return w.take();
    };
    auto decode = [&](const std::string& bytes) {
        model::RowState st = store.empty();
        model::RowStore::decode_clocks(e, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
                                       st);
        return st;
    };
    CHECK(decode(blob(a, b, 0, 1)).fields[e.index_of(counter)].totals.size() == 2);
    CHECK_THROWS_AS(decode(blob(b, a, 0, 1)), Error);  // origins out of order
    CHECK_THROWS_AS(decode(blob(a, a, 0, 1)), Error);  // an origin twice
    CHECK_THROWS_AS(decode(blob(a, b, 1, 0)), Error);  // totals out of order
    CHECK_THROWS_AS(decode(blob(a, b, 0, 0)), Error);  // one origin's total twice
}

TEST_CASE("malformed clocks are reported as corruption, not a crash") {
    const auto& e = *find_entity("gathering");
    const auto& store = model::row_store(e);
    model::RowState s = store.empty();
    s.fields[1].clock = {5, Id::random()};
    const auto blob = model::RowStore::encode_clocks(e, s);
    for (std::size_t cut = 1; cut < blob.size(); ++cut) {
        model::RowState back = store.empty();
        CHECK_THROWS_AS(
            model::RowStore::decode_clocks(e, std::span(reinterpret_cast<const std::uint8_t*>(blob.data()), cut), back),
            Error);
    }
    const std::uint8_t huge_count[] = {0xFF, 0xFF, 0xFF, 0x0F};
    model::RowState back = store.empty();
    CHECK_THROWS_AS(model::RowStore::decode_clocks(e, huge_count, back), Error);
}
