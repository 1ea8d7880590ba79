# shellcheck shell=bash
# The secured profile of our broker (kafka_secure_*): clients connect over
# SASL_SSL with SCRAM-SHA-512, one user per program, and the StandardAuthorizer
# lets each do only its own work (ACLs below). deploy/local.sh up --secure and
# the tests' it_own_kafka_secure use it; the default profile stays plaintext.
#
#   kafka_secure_prepare DATADIR   once per data dir, before kafka_launch: a
#                                  test CA, the broker's key and certificate,
#                                  a password per user, and the broker's
#                                  settings (which kafka_launch then applies)
#   kafka_secure_props DATADIR USER  the user's librdkafka properties, k=v,k=v
#                                  (for EIE_KAFKA_PROPERTIES)
#   kafka_secure_grant DATADIR PORT TOPIC_PREFIX [HOT_GROUP COLD_GROUP]
#                                  the ACLs of every user, once the broker runs
#
# The files, all under DATADIR/secure (0700):
#   ca.crt            the CA that signed the broker's certificate: clients'
#                     ssl.ca.location
#   broker.p12        the broker's key and certificate (PKCS12), for
#                     127.0.0.1 and localhost
#   truststore.p12    the CA for Java clients: the broker itself, kafka-acls
#   passwords         "user password" lines
#   USER.properties   the user's librdkafka properties, one k=v a line
#   admin-java.properties  the admin's Java client settings (kafka-acls)
#   server.properties.in  the broker's settings over the default template's
#   format.args       the SCRAM users, for the first storage format
#
# The users: admin (super user: creates topics and ACLs; the broker's own
# connections), eie-producer (eie-produce, eie-simulate), eie-consumer
# (eie-consumer hot and cold, eie-replay), eie-api.

KAFKA_SECURE_USERS=(admin eie-producer eie-consumer eie-api)

kafka_secure__dir() { printf '%s/secure\n' "$1"; }

# kafka_secure__password DATADIR USER
kafka_secure__password() {
  awk -v u="$2" '$1 == u { print $2 }' "$(kafka_secure__dir "$1")/passwords"
}

# The test CA and the broker's certificate, signed by it (openssl), as
# PKCS12 stores for Java (keytool writes the truststore: Java ignores a
# certificate without a key in an OpenSSL-made PKCS12 file).
kafka_secure__tls() {
  local s=$1 store_pw=$2 log=$1/tls.log
  command -v openssl >/dev/null || { eie_die "openssl not found (apt-get install openssl)"; return 1; }
  command -v keytool >/dev/null || { eie_die "keytool not found (apt-get install openjdk-17-jre-headless)"; return 1; }
  cat >"$s/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
EOF
  if ! {
    openssl req -x509 -config "$s/openssl.cnf" -extensions ca -newkey rsa:2048 -nodes \
      -keyout "$s/ca.key" -out "$s/ca.crt" -days 3650 -subj "/CN=Energy Ingestion Engine test CA" &&
      openssl req -new -config "$s/openssl.cnf" -newkey rsa:2048 -nodes \
        -keyout "$s/broker.key" -out "$s/broker.csr" -subj "/CN=localhost" &&
      openssl x509 -req -in "$s/broker.csr" -CA "$s/ca.crt" -CAkey "$s/ca.key" -CAcreateserial \
        -days 3650 -extfile "$s/openssl.cnf" -extensions broker -out "$s/broker.crt" &&
      openssl pkcs12 -export -in "$s/broker.crt" -inkey "$s/broker.key" -certfile "$s/ca.crt" \
        -name broker -passout "pass:$store_pw" -out "$s/broker.p12" &&
      keytool -importcert -noprompt -alias ca -file "$s/ca.crt" -storetype PKCS12 \
        -keystore "$s/truststore.p12" -storepass "$store_pw"
  } >>"$log" 2>&1; then
    eie_show_tail "$log"
    eie_die "kafka: could not make the test CA and the broker's certificate (log: $log)"
    return 1
  fi
  rm -f "$s/broker.csr" "$s/ca.srl"
}

kafka_secure_prepare() {
  local d=$1 s u pw store_pw admin_pw
  s=$(kafka_secure__dir "$d")
  [[ -s $s/server.properties.in ]] && return 0
  mkdir -p "$d" && d=$(cd "$d" && pwd) && s=$d/secure || return 1
  rm -rf "$s" && mkdir -m 700 "$s" || return 1
  (umask 077 && for u in "${KAFKA_SECURE_USERS[@]}"; do
    printf '%s %s\n' "$u" "$(openssl rand -hex 16)"
  done >"$s/passwords") || return 1
  store_pw=$(openssl rand -hex 16)
  kafka_secure__tls "$s" "$store_pw" || return 1
  admin_pw=$(kafka_secure__password "$d" admin)

  (
    umask 077
    # Client listener SASL_SSL (SCRAM-SHA-512); the controller listener is
    # SASL_SSL too, with PLAIN and the admin's password kept here (SCRAM
    # credentials live in the metadata log, which a controller must serve
    # before it can read them). Both on loopback. The broker's own
    # connections are the admin's, a super user; nobody else is
    # allowed anything no ACL grants.
    cat >"$s/server.properties.in" <<EOF

# ---- Secured profile (deploy/lib/kafka_secure.sh); overrides the above.
listeners=SASL_SSL://127.0.0.1:@PORT@,CONTROLLER://127.0.0.1:@CONTROLLER_PORT@
advertised.listeners=SASL_SSL://127.0.0.1:@PORT@
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL
inter.broker.listener.name=SASL_SSL
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
ssl.keystore.type=PKCS12
ssl.keystore.location=$s/broker.p12
ssl.keystore.password=$store_pw
ssl.key.password=$store_pw
ssl.truststore.type=PKCS12
ssl.truststore.location=$s/truststore.p12
ssl.truststore.password=$store_pw
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
EOF
    for u in "${KAFKA_SECURE_USERS[@]}"; do
      printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$u" "$(kafka_secure__password "$d" "$u")"
    done >"$s/format.args"
    for u in "${KAFKA_SECURE_USERS[@]}"; do
      printf '%s\n' security.protocol=SASL_SSL sasl.mechanisms=SCRAM-SHA-512 "sasl.username=$u" \
        "sasl.password=$(kafka_secure__password "$d" "$u")" "ssl.ca.location=$s/ca.crt" \
        >"$s/$u.properties"
    done
    cat >"$s/admin-java.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PKCS12
ssl.truststore.location=$s/truststore.p12
ssl.truststore.password=$store_pw
EOF
  ) || return 1
  eie_log "kafka: secured profile prepared in $s (users: ${KAFKA_SECURE_USERS[*]})"
}

# kafka_secure_props DATADIR USER: k=v,k=v for EIE_KAFKA_PROPERTIES.
kafka_secure_props() {
  local f
  f=$(kafka_secure__dir "$1")/$2.properties
  [[ -f $f ]] || { eie_die "kafka: no secured client settings for '$2' in $f"; return 1; }
  paste -sd, "$f"
}

# kafka_secure__acl DATADIR PORT ARGS...: one kafka-acls run as the admin.
kafka_secure__acl() {
  local d=$1 port=$2 s java libs
  shift 2
  s=$(kafka_secure__dir "$d")
  libs=$(kafka_libs)
  java=$(kafka_java)
  local jargs
  mapfile -t jargs < <(kafka__java_args)
  if ! "$java" "${jargs[@]}" "-Dlog4j.configuration=file:$d/log4j.properties" -cp "$libs/*" \
    kafka.admin.AclCommand --bootstrap-server "127.0.0.1:$port" \
    --command-config "$s/admin-java.properties" --add "$@" >>"$s/acls.log" 2>&1; then
    eie_show_tail "$s/acls.log"
    eie_die "kafka: kafka-acls $* failed (log: $s/acls.log)"
    return 1
  fi
}

# kafka_secure_grant DATADIR PORT TOPIC_PREFIX [HOT_GROUP COLD_GROUP]: what
# each program does, and nothing more:
#   eie-producer, eie-api  write the telemetry topics (an idempotent producer
#                          needs no more since Kafka 3.0: WRITE on a topic
#                          allows its producer id)
#   eie-api                also reads the vehicle topic for its state cache,
#                          under the group id TOPIC_PREFIX api-state-tail
#                          (it joins no group and commits nothing, but its
#                          client looks the group's coordinator up)
#   eie-consumer           reads the telemetry topics and the dead-letter
#                          topic (what is dead-lettered already), writes the
#                          dead-letter topic and reads its size limit
#                          (DESCRIBE_CONFIGS), under group ids that start
#                          with HOT_GROUP or COLD_GROUP (default
#                          TOPIC_PREFIX hot and cold; the consumers'
#                          dead-letter scans and eie-replay add suffixes)
# Topics are created by the admin (eie-admin topics). KAFKA_SECURE_GRANTS
# numbers what it grants: a deployment granted under an older number is
# granted again (kafka-acls --add keeps what exists).
KAFKA_SECURE_GRANTS=2
kafka_secure_grant() {
  local d=$1 port=$2 prefix=$3 hot=${4:-${3}hot} cold=${5:-${3}cold} t telemetry=() dead
  for t in meter-readings vehicle-readings vehicle-assignments; do
    telemetry+=(--topic "$prefix$t")
  done
  dead=$prefix"dead-letters"
  kafka_secure__acl "$d" "$port" --allow-principal User:eie-producer --allow-principal User:eie-api \
    --operation Write --operation Describe "${telemetry[@]}" || return 1
  kafka_secure__acl "$d" "$port" --allow-principal User:eie-api --operation Read \
    --topic "${prefix}vehicle-readings" --group "${prefix}api-state-tail" || return 1
  kafka_secure__acl "$d" "$port" --allow-principal User:eie-consumer \
    --operation Read --operation Describe "${telemetry[@]}" --topic "$dead" || return 1
  kafka_secure__acl "$d" "$port" --allow-principal User:eie-consumer \
    --operation Write --operation DescribeConfigs --topic "$dead" || return 1
  kafka_secure__acl "$d" "$port" --allow-principal User:eie-consumer \
    --operation Read --resource-pattern-type prefixed --group "$hot" --group "$cold" || return 1
  eie_log "kafka: ACLs granted for topics $prefix* and groups $hot*, $cold*"
}
