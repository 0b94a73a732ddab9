#include "server/auth.hpp"

#include <lindra/error.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <sstream>

namespace lindra::server {
namespace {

using Digest = std::array<unsigned char, 32>;

// Comparing digests of equal length keeps the comparison's time
// independent of where a guessed token first differs, and of its length.
Digest digest(std::string_view token) {
    Digest d{};
    unsigned int len = 0;
    EVP_Digest(token.data(), token.size(), d.data(), &len, EVP_sha256(), nullptr);
    return d;
}

class UserList final : public Authenticator {
public:
    explicit UserList(std::vector<User> users) {
        for (auto& u : users) entries_.push_back({digest(u.token), {std::move(u.id), Role::admin, {}, {}}});
    }

    Identity authenticate(std::string_view token, std::int64_t) const override {
        if (token.empty()) throw TokenRefused("the token is missing");
        const Digest d = digest(token);
        const Identity* found = nullptr;
        for (const auto& e : entries_)  // no early exit
            if (CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0) found = &e.identity;
        if (!found) throw TokenRefused("the token is not valid");
        return *found;
    }

private:
    struct Entry {
        Digest digest;
        Identity identity;
    };
    std::vector<Entry> entries_;
};

}  // namespace

std::unique_ptr<Authenticator> user_list_authenticator(std::vector<User> users) {
    return std::make_unique<UserList>(std::move(users));
}

}  // namespace lindra::server

namespace lindra {

namespace {
constexpr std::string_view kRoles[] = {"candidate", "mentor", "coordinator", "admin"};
}

std::string_view to_string(Role role) { return kRoles[static_cast<int>(role)]; }

Role parse_role(std::string_view text) {
    for (std::size_t i = 0; i < std::size(kRoles); ++i)
        if (kRoles[i] == text) return static_cast<Role>(i);
    throw Error(Errc::invalid_argument,
                "unknown role \"" + std::string(text) + "\" (candidate, mentor, coordinator or admin)");
}

std::vector<User> load_users(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(Errc::not_found, "cannot read users file " + path);
    std::vector<User> users;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        std::istringstream words(line);
        std::string keyword;
        if (!(words >> keyword)) continue;  // blank or comment
        User u;
        std::string extra;
        if (keyword != "user" || !(words >> u.id >> u.role >> u.token) || (words >> extra))
            throw Error(Errc::invalid_argument,
                        path + ":" + std::to_string(n) + ": expected \"user ID ROLE TOKEN\"");
        if (u.role != "coordinator" && u.role != "mentor" && u.role != "candidate")
            throw Error(Errc::invalid_argument, path + ":" + std::to_string(n) + ": unknown role \"" + u.role +
                                                    "\" (coordinator, mentor or candidate)");
        users.push_back(std::move(u));
    }
    return users;
}

}  // namespace lindra
