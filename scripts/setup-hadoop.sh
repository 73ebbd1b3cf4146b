#!/usr/bin/env bash
# Resolves the Hadoop jars that the Hadoop integration tests run real NameNodes from, into a cache
# that survives between runs: $HAFC_HADOOP_HOME (default ~/.cache/hafc/hadoop-<version>) gets
# lib/*.jar and classpath/ (both go on the daemons' classpath; harness/hadoop.ts does that).
# Quick and offline once the cache is complete (a marker file is written only after a full copy).
# Needs Java 17 and Maven; both come from Debian (scripts/setup.sh installs the JRE).
set -euo pipefail

VERSION="${HAFC_HADOOP_VERSION:-3.4.1}"

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

# resolve NAME HOME_DIR LAYOUT WEBAPPS ARTIFACT...: one self-contained jar set per daemon family,
# each with its own layout marker, so adding a family never rewrites a cache that running tests
# (and other checkouts on the machine) have on their classpath.
resolve() {
  local name="$1" home_dir="$2" layout="$3" webapps="$4"
  shift 4
  local marker="${home_dir}/.complete-${layout}"
  if [ -e "$marker" ]; then
    echo "setup-hadoop: ${name} ${VERSION} jars cached in ${home_dir}"
    return 0
  fi
  local work deps="" a
  work="$(mktemp -d)"
  for a in "$@"; do
    deps+="    <dependency><groupId>org.apache.hadoop</groupId><artifactId>${a}</artifactId><version>${VERSION}</version></dependency>
"
  done
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>hafc</groupId>
  <artifactId>hafc-${name}-jars</artifactId>
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
${deps}    <!-- The daemons log through log4j 1 (reload4j); Hadoop's own management leaves it out. -->
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
  rm -rf "${home_dir}.partial"
  mkdir -p "${home_dir}.partial/lib"
  echo "setup-hadoop: resolving ${name} ${VERSION} with Maven into ${home_dir} (first time only)"
  mvn -q -B -Dstyle.color=never -f "$work/pom.xml" \
    -Dmaven.repo.local="${HOME}/.cache/hafc/m2" \
    dependency:copy-dependencies \
    -DincludeScope=runtime \
    -DoutputDirectory="${home_dir}.partial/lib"
  rm -rf "$work"
  # HttpServer2 looks its web apps up as classpath resources (webapps/<name>) and refuses to start
  # without them; the Maven artifacts do not ship them, and the servlets the tests use (/isActive,
  # the image transfer of -bootstrapStandby, WebHDFS, the RM's /ws/v1) are registered in code, so
  # empty ones do.
  for a in $webapps; do mkdir -p "${home_dir}.partial/classpath/webapps/${a}"; done
  rm -rf "$home_dir"
  mv "${home_dir}.partial" "$home_dir"
  touch "$marker"
  echo "setup-hadoop: $(ls "$home_dir/lib" | wc -l) jars in ${home_dir}/lib"
}

# HDFS (NameNodes, DataNode, the shell): hadoop-hdfs declares hadoop-common as "provided", so both
# are named. Bump the layout number whenever the resolved set or the layout changes.
resolve hadoop "${HAFC_HADOOP_HOME:-${HOME}/.cache/hafc/hadoop-${VERSION}}" 2 \
  "hdfs datanode journal secondary static" \
  hadoop-common hadoop-hdfs hadoop-hdfs-client

# YARN ResourceManagers (harness/yarn.ts): a separate set, its own cache dir and marker. The RM's
# web app (Guice) needs TimelineCollectorManager at start, from the timeline service artifact,
# which the RM's POM declares as provided.
resolve hadoop-yarn "${HAFC_HADOOP_YARN_HOME:-${HOME}/.cache/hafc/hadoop-yarn-${VERSION}}" 2 \
  "cluster static yarn" \
  hadoop-common hadoop-yarn-server-resourcemanager hadoop-yarn-server-timelineservice
