// Unit tests for shared/config_file: the INI-like parser, hex/integer helpers
// and SectionReader's typed getters and error reporting.
#include "shared/config_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/shared/test_printers.h"

namespace segw::shared {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::address;

// Parses `text` as "test.conf"; a parse error fails the test and yields an
// empty file.
ConfigFile parse_ok(std::string_view text) {
  auto result = ConfigFile::parse_text(text, "test.conf");
  if (!result) {
    ADD_FAILURE() << "unexpected parse error: " << result.error();
    return {};
  }
  return std::move(result).value();
}

std::string parse_error(std::string_view text) {
  auto result = ConfigFile::parse_text(text, "test.conf");
  if (result) {
    ADD_FAILURE() << "expected a parse error for:\n" << text;
    return {};
  }
  return result.error();
}

// ---------------------------------------------------------------- parse_text

TEST(ConfigFileTest, EmptyAndCommentOnlyTextsHaveNoSections) {
  EXPECT_TRUE(parse_ok("").sections.empty());
  EXPECT_TRUE(parse_ok("\n\n   \n").sections.empty());
  EXPECT_TRUE(parse_ok("# only a comment\n  # indented comment\n").sections.empty());
  EXPECT_EQ(parse_ok("").path, "test.conf");
}

TEST(ConfigFileTest, ParsesSectionsWithAndWithoutNames) {
  auto file = parse_ok(
      "[dataplane]\n"
      "cores = 4\n"
      "\n"
      "[sa to-fap-1]\n"
      "spi = 0x1000\n"
      "direction = outbound\n");
  ASSERT_EQ(file.sections.size(), 2u);

  const auto& global = file.sections[0];
  EXPECT_EQ(global.type, "dataplane");
  EXPECT_EQ(global.name, "");
  EXPECT_EQ(global.line, 1);
  ASSERT_EQ(global.entries.size(), 1u);
  EXPECT_EQ(global.entries[0].key, "cores");
  EXPECT_EQ(global.entries[0].value, "4");
  EXPECT_EQ(global.entries[0].line, 2);

  const auto& sa = file.sections[1];
  EXPECT_EQ(sa.type, "sa");
  EXPECT_EQ(sa.name, "to-fap-1");
  EXPECT_EQ(sa.line, 4);
  ASSERT_EQ(sa.entries.size(), 2u);
  EXPECT_EQ(sa.entries[0].key, "spi");
  EXPECT_EQ(sa.entries[0].value, "0x1000");
  EXPECT_EQ(sa.entries[0].line, 5);
  EXPECT_EQ(sa.entries[1].key, "direction");
  EXPECT_EQ(sa.entries[1].line, 6);
}

TEST(ConfigFileTest, SectionHeaderSpacingIsTrimmed) {
  auto file = parse_ok("[  sa \t  my  peer  ]\n[\tglobal\t]\n");
  ASSERT_EQ(file.sections.size(), 2u);
  EXPECT_EQ(file.sections[0].type, "sa");
  EXPECT_EQ(file.sections[0].name, "my  peer");  // inner spaces kept
  EXPECT_EQ(file.sections[1].type, "global");
  EXPECT_EQ(file.sections[1].name, "");
}

TEST(ConfigFileTest, EmptySectionsAreKept) {
  auto file = parse_ok("[a]\n[b]\n");
  ASSERT_EQ(file.sections.size(), 2u);
  EXPECT_TRUE(file.sections[0].entries.empty());
  EXPECT_TRUE(file.sections[1].entries.empty());
}

TEST(ConfigFileTest, CommentsAreStrippedWholeLineAndTrailing) {
  auto file = parse_ok(
      "# leading comment\n"
      "[s x]   # comment after a header\n"
      "   # indented comment\n"
      "a = 1 # comment after a value\n"
      "b = 2#no space needed\n");
  ASSERT_EQ(file.sections.size(), 1u);
  EXPECT_EQ(file.sections[0].name, "x");
  ASSERT_EQ(file.sections[0].entries.size(), 2u);
  EXPECT_EQ(file.sections[0].entries[0].value, "1");
  EXPECT_EQ(file.sections[0].entries[0].line, 4);
  EXPECT_EQ(file.sections[0].entries[1].value, "2");
  EXPECT_EQ(file.sections[0].entries[1].line, 5);
}

TEST(ConfigFileTest, ValuesKeepInnerSpacesAndEqualsSigns) {
  auto file = parse_ok(
      "[s]\n"
      "selectors =   10.0.0.0/24, 10.1.0.0/24   \n"
      "expression=a = b\n"
      "tight=1\n"
      "\tkey with spaces\t=\tvalue with spaces\t\n"
      "empty =\n");
  ASSERT_EQ(file.sections.size(), 1u);
  const auto& e = file.sections[0].entries;
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].key, "selectors");
  EXPECT_EQ(e[0].value, "10.0.0.0/24, 10.1.0.0/24");
  EXPECT_EQ(e[1].key, "expression");
  EXPECT_EQ(e[1].value, "a = b");
  EXPECT_EQ(e[2].key, "tight");
  EXPECT_EQ(e[2].value, "1");
  EXPECT_EQ(e[3].key, "key with spaces");
  EXPECT_EQ(e[3].value, "value with spaces");
  EXPECT_EQ(e[4].key, "empty");
  EXPECT_EQ(e[4].value, "");
}

TEST(ConfigFileTest, AcceptsCrLfAndAMissingFinalNewline) {
  auto file = parse_ok("[s n]\r\na = 1\r\n\r\nb = 2");
  ASSERT_EQ(file.sections.size(), 1u);
  EXPECT_EQ(file.sections[0].name, "n");
  ASSERT_EQ(file.sections[0].entries.size(), 2u);
  EXPECT_EQ(file.sections[0].entries[0].value, "1");
  EXPECT_EQ(file.sections[0].entries[1].key, "b");
  EXPECT_EQ(file.sections[0].entries[1].value, "2");
  EXPECT_EQ(file.sections[0].entries[1].line, 4);
}

TEST(ConfigFileTest, LastLineWithoutNewlineIsAHeader) {
  auto file = parse_ok("[a]\nk = v\n[b]");
  ASSERT_EQ(file.sections.size(), 2u);
  EXPECT_EQ(file.sections[1].type, "b");
  EXPECT_EQ(file.sections[1].line, 3);
}

TEST(ConfigFileTest, SameKeyInDifferentSectionsIsFine) {
  auto file = parse_ok("[a]\nk = 1\n[b]\nk = 2\n[a]\nk = 3\n");
  ASSERT_EQ(file.sections.size(), 3u);
  EXPECT_EQ(file.sections[2].entries[0].value, "3");
}

TEST(ConfigFileTest, DuplicateKeyNamesBothLines) {
  auto error = parse_error(
      "[sa x]\n"
      "spi = 1\n"
      "# between\n"
      "direction = inbound\n"
      "spi = 2\n");
  EXPECT_THAT(error, StartsWith("test.conf:5: "));
  EXPECT_THAT(error, HasSubstr("'spi'"));
  EXPECT_THAT(error, HasSubstr("line 2"));
}

TEST(ConfigFileTest, KeyOutsideSectionIsAnError) {
  auto error = parse_error("# header comment\nspi = 1\n[sa x]\n");
  EXPECT_THAT(error, StartsWith("test.conf:2: "));
  EXPECT_THAT(error, HasSubstr("outside"));
}

TEST(ConfigFileTest, SectionHeaderMissingBracketIsAnError) {
  auto error = parse_error("[a]\nk = v\n[sa x\n");
  EXPECT_THAT(error, StartsWith("test.conf:3: "));
  EXPECT_THAT(error, HasSubstr("']'"));
  EXPECT_THAT(parse_error("["), StartsWith("test.conf:1: "));
  EXPECT_THAT(parse_error("[sa x] trailing"), HasSubstr("']'"));
}

TEST(ConfigFileTest, EmptySectionHeaderIsAnError) {
  EXPECT_THAT(parse_error("[]\n"), StartsWith("test.conf:1: "));
  EXPECT_THAT(parse_error("\n[   ]\n"), StartsWith("test.conf:2: "));
  EXPECT_THAT(parse_error("[]"), HasSubstr("empty section header"));
}

TEST(ConfigFileTest, LineWithoutEqualsIsAnErrorQuotingTheLine) {
  auto error = parse_error("[s]\nthis is not a pair\n");
  EXPECT_THAT(error, StartsWith("test.conf:2: "));
  EXPECT_THAT(error, HasSubstr("'this is not a pair'"));
}

TEST(ConfigFileTest, EmptyKeyIsAnError) {
  auto error = parse_error("[s]\n  = value\n");
  EXPECT_THAT(error, StartsWith("test.conf:2: "));
  EXPECT_THAT(error, HasSubstr("empty key"));
}

TEST(ConfigFileTest, ErrorsUseTheGivenPath) {
  auto result = ConfigFile::parse_text("[s]\nbroken\n", "/etc/segw/sas.conf");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error(), StartsWith("/etc/segw/sas.conf:2: "));
}

TEST(ConfigFileTest, LoadsAFileFromDisk) {
  std::string path = ::testing::TempDir() + "segw_config_file_test.conf";
  {
    std::ofstream out(path);
    out << "# written by the test\n[sa x]\nspi = 4096\n";
  }
  auto file = ConfigFile::load(path);
  std::remove(path.c_str());
  ASSERT_TRUE(file.ok()) << file.error();
  EXPECT_EQ(file->path, path);
  ASSERT_EQ(file->sections.size(), 1u);
  EXPECT_EQ(file->sections[0].entries[0].value, "4096");
}

TEST(ConfigFileTest, LoadReportsErrorsWithTheFilePath) {
  std::string path = ::testing::TempDir() + "segw_config_file_test_bad.conf";
  {
    std::ofstream out(path);
    out << "[sa x]\nspi = 1\nspi = 2\n";
  }
  auto file = ConfigFile::load(path);
  std::remove(path.c_str());
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error(), StartsWith(path + ":3: "));
}

TEST(ConfigFileTest, LoadOfAMissingFileNamesIt) {
  auto file = ConfigFile::load("/nonexistent/segw/none.conf");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error(), HasSubstr("/nonexistent/segw/none.conf"));
  EXPECT_THAT(file.error(), HasSubstr("cannot open"));
}

// ----------------------------------------------------------------- parse_hex

TEST(ParseHexTest, AcceptsPrefixSeparatorsAndBothCases) {
  using Bytes = std::vector<uint8_t>;
  EXPECT_EQ(parse_hex("0a0B"), Bytes({0x0a, 0x0b}));
  EXPECT_EQ(parse_hex("0x0a0b"), Bytes({0x0a, 0x0b}));
  EXPECT_EQ(parse_hex("0X0A0B"), Bytes({0x0a, 0x0b}));
  EXPECT_EQ(parse_hex("de:ad:BE:ef"), Bytes({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(parse_hex("0xde:ad:be:ef"), Bytes({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(parse_hex("dead beef"), Bytes({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(parse_hex("00ff"), Bytes({0x00, 0xff}));
  EXPECT_EQ(parse_hex(""), Bytes{});
  EXPECT_EQ(parse_hex("0x"), Bytes{});
}

TEST(ParseHexTest, RejectsOddDigitCountsAndForeignCharacters) {
  EXPECT_FALSE(parse_hex("abc").has_value());
  EXPECT_FALSE(parse_hex("0xabc").has_value());
  EXPECT_FALSE(parse_hex("a:b:c").has_value());
  EXPECT_FALSE(parse_hex("0g").has_value());
  EXPECT_FALSE(parse_hex("de-ad").has_value());
  EXPECT_FALSE(parse_hex("0x0x12").has_value());
  EXPECT_FALSE(parse_hex("12\t34").has_value());
}

// ------------------------------------------------------------- parse_integer

TEST(ParseIntegerTest, AcceptsDecimalAndHex) {
  EXPECT_EQ(parse_integer("0"), 0u);
  EXPECT_EQ(parse_integer("42"), 42u);
  EXPECT_EQ(parse_integer("0x2a"), 42u);
  EXPECT_EQ(parse_integer("0X2A"), 42u);
  EXPECT_EQ(parse_integer("007"), 7u);
  EXPECT_EQ(parse_integer("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_integer("0xffffffffffffffff"), UINT64_MAX);
}

TEST(ParseIntegerTest, RejectsMalformedAndOverflowingText) {
  for (std::string_view text : {"", "0x", "-1", "+1", "1.5", "12abc", "0x1g", " 1", "1 ", "1e3",
                                "18446744073709551616", "0x10000000000000000", "ten"}) {
    EXPECT_FALSE(parse_integer(text).has_value()) << "'" << text << "'";
  }
}

// ------------------------------------------------------------- SectionReader

class SectionReaderTest : public ::testing::Test {
 protected:
  // Tests quote line numbers of this text: [sa peer] is line 2, [global] line 14.
  static constexpr std::string_view kText =
      "# test file\n"
      "[sa peer]\n"
      "name = to the peer\n"
      "count = 12\n"
      "hexcount = 0x10\n"
      "port = 70000\n"
      "bogus_int = twelve\n"
      "v4 = 192.0.2.1\n"
      "v6 = 2001:db8::1\n"
      "not_an_address = 300.1.1.1\n"
      "key = 0x00:01:02:03\n"
      "odd_key = 0x012\n"
      "empty =\n"
      "[global]\n"
      "yes1 = yes\n"
      "yes2 = true\n"
      "yes3 = on\n"
      "yes4 = 1\n"
      "no1 = no\n"
      "no2 = false\n"
      "no3 = off\n"
      "no4 = 0\n"
      "capital = Yes\n"
      "maybe = maybe\n";

  void SetUp() override {
    file_ = parse_ok(kText);
    ASSERT_EQ(file_.sections.size(), 2u);
  }
  const ConfigSection& sa() const { return file_.sections[0]; }
  const ConfigSection& global() const { return file_.sections[1]; }

  ConfigFile file_;
};

TEST_F(SectionReaderTest, TextGetters) {
  SectionReader r(file_, sa());
  EXPECT_TRUE(r.has("name"));
  EXPECT_FALSE(r.has("missing"));
  EXPECT_EQ(r.text("name"), "to the peer");
  EXPECT_EQ(r.text("missing"), std::nullopt);
  EXPECT_EQ(r.text("empty"), "");
  EXPECT_EQ(r.text_or("name", "fallback"), "to the peer");
  EXPECT_EQ(r.text_or("missing", "fallback"), "fallback");
  EXPECT_EQ(r.required_text("name"), "to the peer");
  EXPECT_TRUE(r.ok());
}

TEST_F(SectionReaderTest, RequiredTextMissingNamesSectionAndKey) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.required_text("direction"), "");
  EXPECT_FALSE(r.ok());
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  // A missing key has no line of its own: the section header's line is used.
  EXPECT_THAT(status.error(), StartsWith("test.conf:2: [sa peer] direction: "));
  EXPECT_THAT(status.error(), HasSubstr("required key is missing"));
}

TEST_F(SectionReaderTest, RequiredTextRejectsAnEmptyValue) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.required_text("empty"), "");
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:13: [sa peer] empty: "));
}

TEST_F(SectionReaderTest, IntegersInDecimalAndHex) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.integer_or("count", 0, 0, 100), 12u);
  EXPECT_EQ(r.integer_or("hexcount", 0, 0, 100), 16u);
  EXPECT_EQ(r.integer_or("missing", 77, 0, 100), 77u);
  EXPECT_EQ(r.required_integer("count", 12, 12), 12u);  // bounds are inclusive
  EXPECT_TRUE(r.ok());
}

TEST_F(SectionReaderTest, IntegerOutOfRangeNamesKeyLineAndRange) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.integer_or("port", 4500, 1, 65535), 4500u);  // fallback on error
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:6: [sa peer] port: "));
  EXPECT_THAT(status.error(), HasSubstr("70000"));
  EXPECT_THAT(status.error(), HasSubstr("[1, 65535]"));
}

TEST_F(SectionReaderTest, IntegerBelowMinimumIsAnError) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.integer_or("count", 1, 13, 100), 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.finish().error(), HasSubstr("[13, 100]"));
}

TEST_F(SectionReaderTest, MalformedIntegerQuotesTheValue) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.integer_or("bogus_int", 5, 0, 100), 5u);
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:7: [sa peer] bogus_int: "));
  EXPECT_THAT(status.error(), HasSubstr("'twelve'"));
}

TEST_F(SectionReaderTest, RequiredIntegerMissing) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.required_integer("spi", 256, 1000), 256u);  // returns the minimum
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:2: [sa peer] spi: "));
  EXPECT_THAT(status.error(), HasSubstr("missing"));
}

TEST_F(SectionReaderTest, RequiredIntegerOutOfRange) {
  SectionReader r(file_, sa());
  r.required_integer("port", 1, 65535);
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), HasSubstr("port"));
  EXPECT_THAT(status.error(), HasSubstr("out of range"));
}

TEST_F(SectionReaderTest, BooleansAcceptFourSpellingsEach) {
  SectionReader r(file_, global());
  for (const char* key : {"yes1", "yes2", "yes3", "yes4"})
    EXPECT_TRUE(r.boolean_or(key, false)) << key;
  for (const char* key : {"no1", "no2", "no3", "no4"})
    EXPECT_FALSE(r.boolean_or(key, true)) << key;
  EXPECT_TRUE(r.boolean_or("missing", true));
  EXPECT_FALSE(r.boolean_or("missing", false));
  EXPECT_TRUE(r.ok());
}

TEST_F(SectionReaderTest, BooleansAreCaseSensitive) {
  SectionReader r(file_, global());
  EXPECT_FALSE(r.boolean_or("capital", false));
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:23: [global] capital: "));
  EXPECT_THAT(status.error(), HasSubstr("'Yes'"));
}

TEST_F(SectionReaderTest, BadBooleanReturnsFallbackAndFails) {
  SectionReader r(file_, global());
  EXPECT_TRUE(r.boolean_or("maybe", true));
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.finish().error(), HasSubstr("'maybe'"));
}

TEST_F(SectionReaderTest, Addresses) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.address("v4"), address("192.0.2.1"));
  EXPECT_EQ(r.address("v6"), address("2001:db8::1"));
  EXPECT_EQ(r.address("missing"), std::nullopt);
  EXPECT_EQ(r.required_address("v4"), address("192.0.2.1"));
  EXPECT_TRUE(r.ok());  // an absent optional address is not an error
}

TEST_F(SectionReaderTest, BadAddressQuotesTheValue) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.address("not_an_address"), std::nullopt);
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:10: [sa peer] not_an_address: "));
  EXPECT_THAT(status.error(), HasSubstr("'300.1.1.1'"));
}

TEST_F(SectionReaderTest, RequiredAddressMissing) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.required_address("local_address"), IpAddress{});
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:2: [sa peer] local_address: "));
}

TEST_F(SectionReaderTest, HexBytesOfTheRightLength) {
  SectionReader r(file_, sa());
  EXPECT_EQ(r.hex_bytes("key", 4), (std::vector<uint8_t>{0, 1, 2, 3}));
  EXPECT_TRUE(r.ok());
}

TEST_F(SectionReaderTest, HexBytesOfTheWrongLengthSaysBoth) {
  SectionReader r(file_, sa());
  EXPECT_TRUE(r.hex_bytes("key", 16).empty());
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:11: [sa peer] key: "));
  EXPECT_THAT(status.error(), HasSubstr("expected 16 bytes, got 4"));
}

TEST_F(SectionReaderTest, HexBytesNotHex) {
  SectionReader r(file_, sa());
  EXPECT_TRUE(r.hex_bytes("odd_key", 1).empty());
  EXPECT_THAT(r.finish().error(), HasSubstr("not a hex string"));
}

TEST_F(SectionReaderTest, HexBytesMissingSaysHowManyBytes) {
  SectionReader r(file_, sa());
  EXPECT_TRUE(r.hex_bytes("encryption_key", 16).empty());
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), HasSubstr("encryption_key"));
  EXPECT_THAT(status.error(), HasSubstr("16 bytes"));
}

TEST_F(SectionReaderTest, FinishRejectsKeysNobodyAskedFor) {
  SectionReader r(file_, global());
  for (const char* key : {"yes1", "yes2", "yes3", "yes4", "no1", "no2", "no3", "no4", "capital"})
    (void)r.text(key);
  auto status = r.finish();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error(), StartsWith("test.conf:24: [global] maybe: "));
  EXPECT_THAT(status.error(), HasSubstr("unknown key"));
}

TEST_F(SectionReaderTest, FinishSucceedsWhenEveryKeyWasRead) {
  SectionReader r(file_, global());
  for (const char* key : {"yes1", "yes2", "yes3", "yes4", "no1", "no2", "no3", "no4"})
    r.boolean_or(key, false);
  // Any getter marks a key as known, even one whose value is then not used.
  (void)r.text("capital");
  r.text_or("maybe", "");
  r.text_or("never_present", "");  // asking for absent keys is harmless
  EXPECT_TRUE(r.finish().ok());
}

TEST_F(SectionReaderTest, FirstErrorSticks) {
  SectionReader r(file_, sa());
  r.integer_or("bogus_int", 0, 0, 1);
  r.integer_or("port", 0, 0, 1);
  r.fail("name", "custom complaint");
  EXPECT_THAT(r.finish().error(), HasSubstr("bogus_int"));
}

TEST_F(SectionReaderTest, GetterErrorsBeatUnknownKeys) {
  SectionReader r(file_, sa());
  r.required_text("direction");
  // Every other key is unread, but the first error reported is the getter's.
  EXPECT_THAT(r.finish().error(), HasSubstr("direction: required key is missing"));
}

TEST_F(SectionReaderTest, FailRecordsTheCallersOwnValidation) {
  SectionReader r(file_, sa());
  EXPECT_TRUE(r.ok());
  r.fail("count", "must be even");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.finish().error(), "test.conf:4: [sa peer] count: must be even");
}

TEST_F(SectionReaderTest, WhereNamesTheKeysLineOrTheSectionsLine) {
  SectionReader in_sa(file_, sa());
  EXPECT_EQ(in_sa.where("v6"), "test.conf:9: [sa peer] v6");
  EXPECT_EQ(in_sa.where("absent"), "test.conf:2: [sa peer] absent");
  SectionReader in_global(file_, global());
  EXPECT_EQ(in_global.where("no1"), "test.conf:19: [global] no1");
  EXPECT_EQ(in_global.where("absent"), "test.conf:14: [global] absent");
}

}  // namespace
}  // namespace segw::shared
