// The rows of a replica's file as the rules read them (model::RowSource):
// what lets the tablet judge the certificate rule (model/completion.hpp)
// with the server's code. Reads only; the caller holds the Core's mutex
// for as long as it uses one.
#pragma once

#include "model/row_source.hpp"
#include "store/database.hpp"

namespace lindra::detail {

class Rows final : public model::RowSource {
  public:
    explicit Rows(store::Database& db) noexcept : db_(db) {}

    model::RowState load(const EntityDef& e, const Id& row) override;
    std::vector<Id> referring(const EntityDef& e, std::string_view field, const Id& target) override;

  private:
    store::Database& db_;
};

}  // namespace lindra::detail
