"""The members' side of the cluster ladder: one SIPp process plays every member phone, on
one fixed port per topology. Before the ladder, SIPp registers every member from that port
(digest, through the front in a cluster), so each binding's address is that port; each
rung then runs a SIPp UAS on it that answers at once and echoes Record-Route, as a phone
does (SIPp's built-in ``uas`` does not, which would take the dialog past the front).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.call_group_ladder import healthz, sipp_counts
from bench.cluster_config import DOMAIN, PASSWORD, USERS, user_name
from bench.cluster_stack import REPOSITORY

REGISTER_SCENARIO = REPOSITORY / "tests" / "interop" / "scenarios" / "uac_register.xml"

MEMBER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A member phone of the cluster ladder (bench/cluster_phones.py): rings, answers at
     once, echoes Record-Route so the dialog stays on the front's path, waits for BYE. -->
<scenario name="member: answer at once">
  <recv request="INVITE" rrs="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=member 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def member_scenario(workdir: Path) -> Path:
    path = workdir / "cluster_member.xml"
    path.write_text(MEMBER_SCENARIO)
    return path


def register_members(registrar: int, member_port: int, workdir: Path) -> tuple[int, int]:
    """Register every member from 127.0.0.1:``member_port`` at 127.0.0.1:``registrar`` (the
    front, or a lone node); (successful, failed)."""
    users = workdir / "members.csv"
    users.write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"{user_name(n)};{DOMAIN};[authentication username={user_name(n)} "
            f"password={PASSWORD}];3600\n"
            for n in range(USERS)
        )
    )
    log = workdir / f"register_{member_port}.log"
    command = [
        "sipp",
        "-sf",
        str(REGISTER_SCENARIO),
        "-inf",
        str(users),
        f"127.0.0.1:{registrar}",
        "-i",
        "127.0.0.1",
        "-p",
        str(member_port),
        "-m",
        str(USERS),
        "-r",
        "200",
        "-l",
        "50",
        "-nostdin",
        "-timeout",
        "120",
    ]
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=180)
    return sipp_counts(log)


def bindings_seen(http_ports: list[int]) -> list[int]:
    """How many bindings each node knows: every node must know every member's, or a
    call_group sent to it finds some members unreachable."""
    return [healthz(port).get("bindings", 0) for port in http_ports]
