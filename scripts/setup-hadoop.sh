#!/usr/bin/env bash
# Resolves the Hadoop jars that the Hadoop integration tests run real NameNodes from, into a cache
# that survives between runs: $HAFC_HADOOP_HOME (default ~/.cache/hafc/hadoop-<version>) gets
# lib/*.jar and classpath/ (both go on the daemons' classpath; harness/hadoop.ts does that).
# Quick and offline once the cache is complete (a marker file is written only after a full copy).
# Needs Java 17 and Maven; both come from Debian (scripts/setup.sh installs the JRE).
set -euo pipefail

VERSION="${HAFC_HADOOP_VERSION:-3.4.1}"
HOME_DIR="${HAFC_HADOOP_HOME:-${HOME}/.cache/hafc/hadoop-${VERSION}}"
# Bumped whenever the resolved set or the layout below changes, so a stale cache is redone.
LAYOUT=2
MARKER="${HOME_DIR}/.complete-${LAYOUT}"

if [ -e "$MARKER" ]; then
  echo "setup-hadoop: hadoop ${VERSION} jars cached in ${HOME_DIR}"
  exit 0
fi

if ! command -v mvn >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "setup-hadoop: installing maven and a JDK (Maven needs one)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends maven openjdk-17-jdk-headless >/dev/null
  else
    echo "setup-hadoop: cannot resolve Hadoop jars: mvn not found; install maven (apt-get install maven)" >&2
    exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# hadoop-hdfs declares hadoop-common as "provided", so both are named; the daemons need nothing else.
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>hafc</groupId>
  <artifactId>hafc-hadoop-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <!-- Hadoop's own version choices: plain mediation picks an older jackson-core than the
       jackson-databind the NameNode is built against, and the NameNode then fails at start. -->
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.hadoop</groupId>
        <artifactId>hadoop-project</artifactId>
        <version>${VERSION}</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.hadoop</groupId>
      <artifactId>hadoop-common</artifactId>
      <version>${VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.hadoop</groupId>
      <artifactId>hadoop-hdfs</artifactId>
      <version>${VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.hadoop</groupId>
      <artifactId>hadoop-hdfs-client</artifactId>
      <version>${VERSION}</version>
    </dependency>
    <!-- The daemons log through log4j 1 (reload4j); Hadoop's own management leaves it out. -->
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
    </dependency>
  </dependencies>
</project>
POM

rm -rf "${HOME_DIR}.partial"
mkdir -p "${HOME_DIR}.partial/lib"
echo "setup-hadoop: resolving hadoop ${VERSION} with Maven into ${HOME_DIR} (first time only)"
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" \
  -Dmaven.repo.local="${HOME}/.cache/hafc/m2" \
  dependency:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="${HOME_DIR}.partial/lib"
# HttpServer2 looks its web apps up as classpath resources (webapps/<name>) and refuses to start
# without them; the Maven artifacts do not ship them, and the daemons' servlets (/isActive, the
# image transfer that -bootstrapStandby uses) are registered in code, so empty ones do.
mkdir -p "${HOME_DIR}.partial/classpath/webapps/"{hdfs,datanode,journal,secondary,static}
rm -rf "$HOME_DIR"
mv "${HOME_DIR}.partial" "$HOME_DIR"
touch "$MARKER"
echo "setup-hadoop: $(ls "$HOME_DIR/lib" | wc -l) jars in ${HOME_DIR}/lib"
