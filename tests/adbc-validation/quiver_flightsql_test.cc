// Quiver's driver quirks for arrow-adbc's C validation suite (c/validation): the generic
// Database, Connection and Statement tests, run through the ADBC Flight SQL driver against a
// running `quiver serve`. Written for Quiver; see docs/CONFORMANCE.md for how to build and run.
//
// Environment:
//   QUIVER_ADBC_URI       grpc://host:port of `quiver serve` (required)
//   QUIVER_ADBC_USER      user name for Basic auth (any; default "adbc")
//   QUIVER_ADBC_PASSWORD  a read-write token of the server (optional when it runs without tokens)
//
// What is switched off here, and why (each one is what GetSqlInfo answers):
//   transactions          FLIGHT_SQL_SERVER_TRANSACTION = NONE (each statement commits itself)
//   cancel                FLIGHT_SQL_SERVER_CANCEL = false
//   ingest into a catalog / db schema / temporary table: SQL_DDL_CATALOG = SQL_DDL_SCHEMA =
//                         false, and the server has no temporary tables
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <arrow-adbc/adbc.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nanoarrow/nanoarrow.h>

#include "validation/adbc_validation.h"
#include "validation/adbc_validation_util.h"

namespace {

using adbc_validation::IsOkStatus;

const char* Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

// Runs one SQL statement that returns no rows we need.
AdbcStatusCode RunSql(struct AdbcConnection* connection, const std::string& sql,
                      struct AdbcError* error) {
  adbc_validation::Handle<struct AdbcStatement> statement;
  AdbcStatusCode rc = AdbcStatementNew(connection, &statement.value, error);
  if (rc != ADBC_STATUS_OK) return rc;
  rc = AdbcStatementSetSqlQuery(&statement.value, sql.c_str(), error);
  if (rc != ADBC_STATUS_OK) return rc;
  rc = AdbcStatementExecuteQuery(&statement.value, nullptr, nullptr, error);
  if (rc != ADBC_STATUS_OK) return rc;
  return AdbcStatementRelease(&statement.value, error);
}

class QuiverQuirks : public adbc_validation::DriverQuirks {
 public:
  AdbcStatusCode SetupDatabase(struct AdbcDatabase* database,
                               struct AdbcError* error) const override {
    const char* uri = Env("QUIVER_ADBC_URI", nullptr);
    if (!uri) {
      ADD_FAILURE() << "set QUIVER_ADBC_URI to the grpc:// address of `quiver serve`";
      return ADBC_STATUS_INVALID_ARGUMENT;
    }
    EXPECT_THAT(AdbcDatabaseSetOption(database, "uri", uri, error), IsOkStatus(error));
    if (const char* password = Env("QUIVER_ADBC_PASSWORD", nullptr)) {
      EXPECT_THAT(AdbcDatabaseSetOption(database, "username",
                                        Env("QUIVER_ADBC_USER", "adbc"), error),
                  IsOkStatus(error));
      EXPECT_THAT(AdbcDatabaseSetOption(database, "password", password, error),
                  IsOkStatus(error));
    }
    return ADBC_STATUS_OK;
  }

  AdbcStatusCode DropTable(struct AdbcConnection* connection, const std::string& name,
                           struct AdbcError* error) const override {
    return RunSql(connection, "DROP TABLE IF EXISTS " + QuoteIdentifier(name), error);
  }

  AdbcStatusCode CreateSampleTable(struct AdbcConnection* connection,
                                   const std::string& name,
                                   struct AdbcError* error) const override {
    AdbcStatusCode rc = RunSql(
        connection, "CREATE TABLE " + QuoteIdentifier(name) + " (int64s BIGINT, strings TEXT)",
        error);
    if (rc != ADBC_STATUS_OK) return rc;
    return RunSql(connection,
                  "INSERT INTO " + QuoteIdentifier(name) +
                      " VALUES (42, 'foo'), (-42, NULL), (NULL, '')",
                  error);
  }

  std::string BindParameter(int) const override { return "?"; }

  bool supports_bulk_ingest(const char*) const override { return true; }
  bool supports_concurrent_statements() const override { return true; }
  bool supports_execute_schema() const override { return true; }
  bool supports_partitioned_data() const override { return true; }
  bool supports_dynamic_parameter_binding() const override { return true; }
  bool supports_get_objects() const override { return true; }
  bool supports_get_sql_info() const override { return true; }
  std::optional<adbc_validation::SqlInfoValue> supports_get_sql_info(
      uint32_t info_code) const override {
    switch (info_code) {
      case ADBC_INFO_DRIVER_NAME:
        return "ADBC Flight SQL Driver - Go";
      case ADBC_INFO_VENDOR_NAME:
        return "Quiver";
      default:
        return std::nullopt;
    }
  }
  // GetSqlInfo: FLIGHT_SQL_SERVER_TRANSACTION = NONE
  bool supports_transactions() const override { return false; }
  // GetSqlInfo: FLIGHT_SQL_SERVER_CANCEL = false
  bool supports_cancel() const override { return false; }
  // GetSqlInfo: SQL_DDL_CATALOG = SQL_DDL_SCHEMA = false; no temporary tables
  bool supports_bulk_ingest_catalog() const override { return false; }
  bool supports_bulk_ingest_db_schema() const override { return false; }
  bool supports_bulk_ingest_temporary() const override { return false; }

  std::string catalog() const override { return "datafusion"; }
  std::string db_schema() const override { return "public"; }
};

class QuiverDatabaseTest : public ::testing::Test, public adbc_validation::DatabaseTest {
 public:
  const adbc_validation::DriverQuirks* quirks() const override { return &quirks_; }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpTest()); }
  void TearDown() override { ASSERT_NO_FATAL_FAILURE(TearDownTest()); }

 protected:
  QuiverQuirks quirks_;
};
ADBCV_TEST_DATABASE(QuiverDatabaseTest)

class QuiverConnectionTest : public ::testing::Test, public adbc_validation::ConnectionTest {
 public:
  const adbc_validation::DriverQuirks* quirks() const override { return &quirks_; }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpTest()); }
  void TearDown() override { ASSERT_NO_FATAL_FAILURE(TearDownTest()); }

 protected:
  QuiverQuirks quirks_;
};
ADBCV_TEST_CONNECTION(QuiverConnectionTest)

class QuiverStatementTest : public ::testing::Test, public adbc_validation::StatementTest {
 public:
  const adbc_validation::DriverQuirks* quirks() const override { return &quirks_; }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(SetUpTest()); }
  void TearDown() override { ASSERT_NO_FATAL_FAILURE(TearDownTest()); }

 protected:
  QuiverQuirks quirks_;
};
ADBCV_TEST_STATEMENT(QuiverStatementTest)

}  // namespace
