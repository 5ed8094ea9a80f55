"""Synthetic corpus of Chinese news posts in the Jekyll format used by the target site.

Every post looks like this::

    ---
    layout: post
    title: "【领航中国】长江沿线生态环境保护焕发新活力"
    date: 2022-09-24 19:00:37 +0800
    categories: xinwenlianbo
    tags: 新闻联播 领航中国
    ---
    <p><strong>央视网消息</strong>（新闻联播）：...</p>
     <p>...</p><p class="em_media">（文章来源：央视网）</p>

    <http://news.example/2022/09/24/3f9a0c1d.html>

    [返回新闻联播新闻](//news.example/xinwenlianbo.html)｜[返回首页](//news.example/)

All vocabulary below was written for this module; nothing is copied from real articles.

Public API
----------
* :class:`SyntheticPost` -- one generated post (``text`` is the full file text).
* :func:`make_posts` -- deterministic, streaming generator of posts.
* :func:`write_corpus` -- writes a corpus folder, optionally with broken and awkward
  files mixed in, and returns a summary of what an indexer should accept/reject.
* CLI: ``python -m synthetic OUT_DIR -n 3000 --seed 1 --broken 0.01``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "ACCEPTED_KINDS",
    "CATEGORIES",
    "REJECTED_KINDS",
    "SHARD_THRESHOLD",
    "SyntheticPost",
    "main",
    "make_posts",
    "write_corpus",
]

CST = timezone(timedelta(hours=8))

#: Above this many posts, :func:`write_corpus` shards files into ``YYYY/`` subfolders.
SHARD_THRESHOLD = 20_000

#: Broken kinds: files an indexer must reject (listed in ``expected_rejected``).
REJECTED_KINDS: tuple[str, ...] = (
    "undecodable",  # invalid UTF-8 that is not valid GB18030 either
    "bad_yaml",  # front matter is not parseable YAML
    "missing_title",  # front matter without a title
    "no_date",  # no date in front matter, file name without a date
    "empty_body",  # front matter only, body is whitespace
    "binary",  # random bytes with NULs and a .md extension
    "html_bomb",  # 100k nested <div>, no visible text
    "oversized",  # valid post padded to 2 MB (50 MB with big_files=True)
)

#: Valid-but-awkward kinds: files an indexer must accept.
ACCEPTED_KINDS: tuple[str, ...] = (
    "gb18030",  # whole file encoded in GB18030
    "bom",  # UTF-8 with a byte order mark
    "duplicate",  # extra copy of a post under a different file name
    "yaml_lists",  # categories/tags as YAML lists
    "utc_date",  # date: 2020-07-30T17:09:49.000Z
    "spaces_in_name",  # file name with spaces
)

# Interleaved so that every kind shows up as early as possible.
_ALL_KINDS: tuple[str, ...] = tuple(
    k
    for pair in zip(
        REJECTED_KINDS,
        ACCEPTED_KINDS + ("",) * (len(REJECTED_KINDS) - len(ACCEPTED_KINDS)),
        strict=True,
    )
    for k in pair
    if k
)

SMALL_OVERSIZE = 2 * 1024 * 1024
BIG_OVERSIZE = 50 * 1024 * 1024
HTML_BOMB_DEPTH = 100_000


@dataclass(frozen=True)
class SyntheticPost:
    filename: str
    title: str
    date: datetime  # timezone-aware (+08:00)
    categories: list[str]
    tags: list[str]
    body_html: str
    source_url: str
    text: str  # full file text: front matter + body + source line + nav line


# ---------------------------------------------------------------------------
# Vocabulary (own phrases)
# ---------------------------------------------------------------------------

PLACES = [
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北雄安新区",
    "浙江杭州",
    "广东深圳",
    "四川成都",
    "湖北武汉",
    "陕西西安",
    "新疆喀什",
    "云南昆明",
    "黑龙江哈尔滨",
    "江苏苏州",
    "山东青岛",
    "海南三亚",
    "贵州贵阳",
    "甘肃兰州",
    "内蒙古呼和浩特",
    "长江沿线",
    "黄河流域",
    "粤港澳大湾区",
    "长三角地区",
    "京津冀地区",
    "天津滨海新区",
    "福建厦门",
    "吉林长春",
    "广西南宁",
    "江西赣州",
    "湖南长沙",
]

FOREIGN_PLACES = [
    "日内瓦",
    "雅加达",
    "内罗毕",
    "里约热内卢",
    "布鲁塞尔",
    "曼谷",
    "开罗",
    "阿斯塔纳",
    "吉隆坡",
    "伊斯坦布尔",
    "利马",
    "塔什干",
    "达卡",
    "亚的斯亚贝巴",
]

TIME_PHRASES = [
    "近日",
    "今年以来",
    "日前",
    "连日来",
    "近年来",
    "入夏以来",
    "假期期间",
    "截至目前",
    "进入冬季以来",
    "上半年",
    "本周",
    "开春以来",
    "一季度",
    "最近一段时间",
]

TITLE_PHRASES = [
    "焕发新活力",
    "跑出加速度",
    "按下快进键",
    "迈上新台阶",
    "取得新突破",
    "展现新气象",
    "绘就新画卷",
    "激发新动能",
    "开创新局面",
    "释放新潜力",
    "书写新篇章",
    "答好新考卷",
    "蹚出新路子",
    "结出新硕果",
    "铺就幸福路",
]

SURNAMES = list("王李张刘陈杨黄赵周吴徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭")
GIVEN_NAMES = [
    "建国",
    "晓燕",
    "志强",
    "海涛",
    "丽华",
    "明",
    "静",
    "伟",
    "磊",
    "芳",
    "晨阳",
    "雨欣",
    "国栋",
    "春梅",
    "子涵",
    "立新",
    "文博",
    "思远",
    "红霞",
    "永胜",
    "佳怡",
    "浩然",
]

NUMBER_PATTERNS: list[tuple[str, int, int]] = [
    ("同比增长{}.{}%", 1, 30),
    ("较上年提高{}.{}个百分点", 1, 9),
    ("累计超过{}万人次", 2, 900),
    ("总投资约{}亿元", 3, 800),
    ("覆盖{}个县区", 5, 200),
    ("已建成{}个项目", 3, 500),
    ("带动就业{}万余人", 1, 60),
    ("服务企业{}家", 20, 5000),
    ("参与人数达{}万", 1, 300),
    ("环比上升{}.{}%", 1, 12),
]

NASTY_SNIPPETS = [
    "<script>alert(1)</script>",
    '<script type="text/javascript">var tip="这段脚本文字不应被索引";alert(1);</script>',
    "<img src=x onerror=alert(1)>",
    '<p><a href="javascript:alert(1)">点击查看详情</a></p>',
    '<iframe src="//video.example/player?vid=8f2c" width="640" height="360" frameborder="0"></iframe>',
    "<style>.em_media{color:#999;font-size:12px} p{line-height:1.8}</style>",
    "<!-- 编辑备注：本段由系统自动生成 -->",
    '<p style="text-align:center"><img src="//img.news.example/photo/2b7e.jpg" alt="现场图片" width="600"></p>',
    '<div class="video_box" style="display:none"><span><span class="hide">隐藏</span></span></div>',
]

SOURCES = ["央视网", "央视网", "央视网", "央视网", "新华社", "人民网", "中国新闻网", "光明网"]

# Tags ordered by popularity; sampled with Zipf-like weights.
TAGS = [
    "新闻联播",
    "经济",
    "天津",
    "职业教育",
    "人工智能",
    "5G",
    "新冠疫情",
    "碳中和",
    "产教融合",
    "鲁班工坊",
    "乡村振兴",
    "一带一路",
    "科技创新",
    "高质量发展",
    "消费",
    "外贸",
    "生态环境",
    "文化遗产",
    "体育",
    "冬奥会",
    "教育",
    "就业",
    "数字经济",
    "新能源汽车",
    "芯片",
    "航天",
    "长江",
    "黄河",
    "粤港澳大湾区",
    "京津冀",
    "疫苗",
    "楼市",
    "股市",
    "人民币",
    "非遗",
    "博物馆",
    "足球",
    "马拉松",
    "双减",
    "高考",
    "领航中国",
    "焦点访谈",
    "国际",
    "气候变化",
    "金融",
]
# Programme tags only come from the xinwenlianbo category's home tags.
_PROGRAMME_TAGS = {"新闻联播", "领航中国", "焦点访谈"}
_ZIPF_TAGS = [t for t in TAGS if t not in _PROGRAMME_TAGS]
_TAG_CUM: list[float] = []
_acc = 0.0
for _rank in range(len(_ZIPF_TAGS)):
    _acc += 1.0 / (_rank + 1) ** 1.1
    _TAG_CUM.append(_acc)
del _acc, _rank

# name, display name, weight, home tags, columns, subjects, verbs, objects, results,
# mixed-content title fragments, ASCII slug words, lead prefix
CATEGORY_DATA: dict[str, dict[str, Any]] = {
    "xinwenlianbo": {
        "display": "新闻联播",
        "weight": 30,
        "home_tags": ["新闻联播", "领航中国", "焦点访谈"],
        "columns": ["领航中国", "奋进新征程", "高质量发展调研行", "走进县城看发展", "一线调研", "权威发布"],
        "subjects": [
            "各地各部门",
            "有关部门",
            "基层干部群众",
            "沿线省市",
            "广大党员干部",
            "科研人员",
            "一线建设者",
            "相关企业",
            "各级政府",
            "志愿者队伍",
        ],
        "verbs": ["扎实推进", "持续深化", "全面落实", "加快推进", "统筹推进", "积极探索", "不断完善", "大力推动", "协同推进"],
        "objects": [
            "生态环境保护",
            "乡村振兴",
            "区域协调发展",
            "民生保障工作",
            "基础设施建设",
            "城乡融合发展",
            "长江大保护",
            "黄河流域生态治理",
            "基层治理",
            "粮食安全",
            "防汛抗旱工作",
            "老旧小区改造",
        ],
        "results": [
            "群众获得感不断增强",
            "发展质量和效益稳步提升",
            "一幅幅新画卷徐徐展开",
            "发展后劲持续增强",
            "各项工作取得积极成效",
            "城乡面貌焕然一新",
        ],
        "mixed": ["5G+工业互联网", "GDP增长6.5%", "COVID-19防控", "5G网络覆盖所有县城"],
        "slug_words": [
            "changjiang",
            "xinhuoli",
            "xiangcun",
            "zhenxing",
            "minsheng",
            "shengtai",
            "jianshe",
            "fazhan",
            "jiceng",
            "lianghu",
        ],
        "roles": ["村党支部书记", "社区工作者", "镇长", "护林员", "河长"],
        "lead": "<strong>央视网消息</strong>（新闻联播）：",
    },
    "finance": {
        "display": "财经",
        "weight": 16,
        "home_tags": ["经济", "金融", "消费", "外贸"],
        "columns": ["财经观察", "数据看经济", "市场观察", "经济聚焦"],
        "subjects": [
            "央行",
            "统计部门",
            "上市公司",
            "中小微企业",
            "金融机构",
            "外贸企业",
            "商业银行",
            "投资者",
            "消费者",
            "制造业企业",
        ],
        "verbs": ["加大", "优化", "释放", "稳定", "提振", "扩大", "降低", "支持", "盘活"],
        "objects": [
            "信贷投放",
            "消费需求",
            "外贸进出口",
            "制造业投资",
            "社会融资规模",
            "居民收入",
            "物价水平",
            "跨境人民币结算",
            "普惠金融服务",
            "房地产市场",
            "新能源汽车消费",
            "服务贸易",
        ],
        "results": [
            "经济运行总体回升向好",
            "市场预期持续改善",
            "内需潜力加快释放",
            "企业经营压力有所缓解",
            "金融服务实体经济能力增强",
        ],
        "mixed": ["GDP增长6.5%", "CPI同比上涨2.1%", "PMI重回扩张区间", "A股成交额破万亿", "GDP同比增长5.2%"],
        "slug_words": ["jingji", "gdp", "xiaofei", "waimao", "jinrong", "yinhang", "shichang", "touzi", "wujia", "rongzi"],
        "roles": ["首席经济学家", "研究员", "总经理", "财务总监", "分析师"],
        "lead": "<strong>央视网消息</strong>：",
    },
    "tech": {
        "display": "科技",
        "weight": 14,
        "home_tags": ["人工智能", "5G", "科技创新", "芯片", "航天"],
        "columns": ["科技前沿", "创新中国", "硬核科技", "数字生活"],
        "subjects": ["科研团队", "科技企业", "国家实验室", "高校院所", "工程师们", "初创公司", "运营商", "研发人员"],
        "verbs": ["突破", "研发", "部署", "攻克", "推出", "测试", "应用", "升级"],
        "objects": [
            "5G基站",
            "人工智能大模型",
            "量子计算原型机",
            "新型显示材料",
            "工业互联网平台",
            "国产芯片",
            "北斗导航系统",
            "自动驾驶技术",
            "新能源电池",
            "卫星互联网",
            "智能机器人",
            "算力网络",
        ],
        "results": ["关键指标达到国际先进水平", "相关成果已进入产业化阶段", "为数字经济发展注入新动能", "应用场景不断拓展"],
        "mixed": ["5G", "iPhone", "AI大模型", "6G研发", "Wi-Fi 7路由器", "App适老化"],
        "slug_words": ["keji", "ai", "xinpian", "beidou", "liangzi", "jiqiren", "suanli", "hangtian", "chuangxin", "shuzi"],
        "roles": ["首席科学家", "工程师", "研究员", "项目负责人", "教授"],
        "lead": "<strong>央视网消息</strong>：",
    },
    "world": {
        "display": "国际",
        "weight": 12,
        "home_tags": ["国际", "一带一路", "气候变化"],
        "columns": ["国际观察", "环球视线", "全球连线"],
        "subjects": ["多国代表", "联合国有关机构", "国际观察人士", "当地民众", "各方代表", "外国企业家", "中外专家"],
        "verbs": ["呼吁", "关注", "推动", "加强", "深化", "拓展", "支持"],
        "objects": [
            "气候变化合作",
            "多边贸易体制",
            "共建“一带一路”合作",
            "全球粮食安全",
            "人文交流",
            "地区和平稳定",
            "公共卫生合作",
            "中欧班列运输",
            "绿色能源合作",
        ],
        "results": ["为世界经济复苏注入正能量", "受到与会各方广泛欢迎", "合作前景十分广阔", "当地民众切实受益"],
        "mixed": ["COVID-19疫苗合作", "G20峰会", "APEC会议", "WTO改革"],
        "slug_words": ["guoji", "yidaiyilu", "qihou", "hezuo", "huiyi", "fenghui", "maoyi", "jiaoliu", "banlie", "nengyuan"],
        "roles": ["大使", "学者", "企业代表", "官员", "专家"],
        "lead": "<strong>央视网消息</strong>（国际时讯）：",
        "foreign": True,
    },
    "sports": {
        "display": "体育",
        "weight": 9,
        "home_tags": ["体育", "足球", "马拉松", "冬奥会"],
        "columns": ["体坛快讯", "赛场内外", "全民健身"],
        "subjects": ["中国女排", "国家队队员", "年轻选手", "业余跑者", "校园足球队员", "冰雪运动爱好者", "乒乓球队", "游泳队"],
        "verbs": ["夺得", "刷新", "备战", "参加", "挑战", "完成", "晋级"],
        "objects": [
            "世界锦标赛冠军",
            "全国纪录",
            "马拉松赛事",
            "冰雪运动季",
            "全民健身活动",
            "青少年足球联赛",
            "亚运会比赛",
            "城市半程马拉松",
        ],
        "results": ["赛场内外气氛热烈", "展现了顽强拼搏的精神", "吸引了大批观众到场助威", "群众健身热情持续高涨"],
        "mixed": ["NBA中国赛", "CBA联赛", "F1中国站", "U17国少队"],
        "slug_words": ["tiyu", "zuqiu", "paiqiu", "malasong", "bingxue", "jianshen", "saishi", "guanjun", "jilu", "pingpang"],
        "roles": ["教练", "运动员", "裁判", "领队", "赛事负责人"],
        "lead": "<strong>央视网消息</strong>：",
    },
    "culture": {
        "display": "文化",
        "weight": 9,
        "home_tags": ["文化遗产", "非遗", "博物馆"],
        "columns": ["文化中国", "非遗里的中国", "文旅观察"],
        "subjects": ["文物工作者", "非遗传承人", "博物馆", "青年艺术家", "文旅部门", "各地剧院", "考古队员"],
        "verbs": ["修复", "展出", "传承", "推出", "挖掘", "演绎", "守护"],
        "objects": [
            "古籍文献",
            "传统手工技艺",
            "数字文物展",
            "地方戏曲",
            "考古新发现",
            "古建筑群",
            "文旅消费新场景",
            "民俗文化活动",
            "传统村落",
        ],
        "results": ["吸引众多游客驻足观赏", "让传统文化焕发新生机", "文化自信不断增强", "古老技艺走进现代生活"],
        "mixed": ["VR看展", "IP联名文创", "3D打印文物复制品"],
        "slug_words": ["wenhua", "feiyi", "bowuguan", "kaogu", "xiqu", "guji", "wenlv", "chuancheng", "gujianzhu", "minsu"],
        "roles": ["馆长", "传承人", "研究馆员", "导演", "讲解员"],
        "lead": "<strong>央视网消息</strong>：",
    },
    "education": {
        "display": "教育",
        "weight": 10,
        "home_tags": ["职业教育", "产教融合", "鲁班工坊", "教育", "双减", "高考"],
        "columns": ["教育观察", "职教风采", "校园新风"],
        "subjects": ["职业院校", "鲁班工坊", "高校毕业生", "中小学", "教育部门", "校企双方", "一线教师", "海外学员"],
        "verbs": ["深化", "推进", "开设", "共建", "培养", "拓展", "完善"],
        "objects": [
            "产教融合",
            "职业技能培训",
            "实训基地",
            "双减政策落实",
            "课后服务",
            "国际合作办学",
            "专业课程体系",
            "高技能人才队伍",
            "中外人文交流",
        ],
        "results": ["毕业生就业质量持续提升", "学生动手能力明显增强", "受到合作国家师生欢迎", "教育公平迈出新步伐"],
        "mixed": ["STEM课程", "AI进课堂", "5G智慧校园"],
        "slug_words": [
            "jiaoyu",
            "zhijiao",
            "lubangongfang",
            "chanjiao",
            "xuexiao",
            "shixun",
            "jineng",
            "gaokao",
            "shuangjian",
            "jiuye",
        ],
        "roles": ["校长", "院长", "教师", "学员", "企业导师"],
        "lead": "<strong>央视网消息</strong>：",
    },
}

CATEGORIES: tuple[str, ...] = tuple(CATEGORY_DATA)
_CAT_CUM: list[float] = []
_acc = 0.0
for _c in CATEGORIES:
    _acc += CATEGORY_DATA[_c]["weight"]
    _CAT_CUM.append(_acc)
del _acc, _c

_SLUG_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# Generation helpers
# ---------------------------------------------------------------------------

Slot = str | list[str] | Callable[[Callable[[], float]], str]


def _pick(lst: list[str], r: Callable[[], float]) -> str:
    return lst[int(r() * len(lst))]


def _number(r: Callable[[], float]) -> str:
    pat, lo, hi = NUMBER_PATTERNS[int(r() * len(NUMBER_PATTERNS))]
    a = lo + int(r() * (hi - lo + 1))
    if pat.count("{}") == 2:
        return pat.format(a, int(r() * 10))
    return pat.format(a)


def _person(roles: list[str]) -> Callable[[Callable[[], float]], str]:
    def person(r: Callable[[], float]) -> str:
        return _pick(roles, r) + _pick(SURNAMES, r) + _pick(GIVEN_NAMES, r)

    return person


def _compile(spec: str, slots: dict[str, Slot]) -> tuple[Slot, ...]:
    """Turn 'A，P S V O' style specs into a tuple of literals and slots.

    Uppercase letters listed in ``slots`` are slots; '|' separates tokens.
    """
    out: list[Slot] = []
    for tok in spec.split("|"):
        out.append(slots.get(tok, tok))
    return tuple(out)


_SENTENCE_SPECS = [
    "A|，|P|S|V|O|，|R|。",
    "S|V|O|，|N|。",
    "据了解，|P|已|V|O|，|N|。",
    "Q|表示，“|V|O|是一项长期任务，我们会一步一个脚印把工作做实。”",
    "在|P|，|S|正在|V|O|。",
    "数据显示，|O|N|，|R|。",
    "下一步，|S|将继续|V|O|，推动|O|T|。",
    "记者在|P|看到，|S|V|O|的热情很高。",
    "“|O|做好了，|R|。”|Q|说。",
    "围绕|O|，|P|出台了一系列措施，|N|。",
    "业内人士认为，|V|O|有助于|R|。",
    "与此同时，|S|还|V|O|，|R|。",
    "截至目前，|P|O|N|。",
    "A|，|S|把|O|作为重点，|N|。",
    "Q|介绍，|P|O|N|，|R|。",
]

_TITLE_SPECS = [
    "【|C|】|P|O|T",
    "【|C|】|V|O| |P|T",
    "P|S|V|O",
    "O|N",
    "M|T",
    "S|：|V|O| |T",
    "P|：|M|T",
    "P|O|T",
]


class _Cat:
    """Pre-compiled generation tables for one category."""

    __slots__ = (
        "data",
        "display",
        "home_tags",
        "lead",
        "name",
        "objects",
        "sentences",
        "slug_words",
        "titles",
    )

    def __init__(self, name: str) -> None:
        d = CATEGORY_DATA[name]
        self.name = name
        self.data = d
        self.display: str = d["display"]
        self.lead: str = d["lead"]
        self.home_tags: list[str] = d["home_tags"]
        self.slug_words: list[str] = d["slug_words"]
        self.objects: list[str] = d["objects"]
        places = PLACES + FOREIGN_PLACES * 2 if d.get("foreign") else PLACES
        slots: dict[str, Slot] = {
            "A": TIME_PHRASES,
            "P": places,
            "S": d["subjects"],
            "V": d["verbs"],
            "O": d["objects"],
            "R": d["results"],
            "T": TITLE_PHRASES,
            "C": d["columns"],
            "M": d["mixed"],
            "N": _number,
            "Q": _person(d["roles"]),
        }
        self.sentences = [_compile(s, slots) for s in _SENTENCE_SPECS]
        self.titles = [_compile(s, slots) for s in _TITLE_SPECS]


_CATS: dict[str, _Cat] = {}


def _cat(name: str) -> _Cat:
    c = _CATS.get(name)
    if c is None:
        c = _CATS[name] = _Cat(name)
    return c


def _fill(tpl: tuple[Slot, ...], r: Callable[[], float]) -> str:
    parts = []
    for it in tpl:
        if type(it) is str:
            parts.append(it)
        elif type(it) is list:
            parts.append(it[int(r() * len(it))])
        else:
            parts.append(it(r))  # type: ignore[operator]
    return "".join(parts)


_S2T: Any = None


def _to_traditional(s: str) -> str:
    global _S2T
    if _S2T is None:
        import opencc

        _S2T = opencc.OpenCC("s2t")
    return _S2T.convert(s)


def _slug_id(i: int) -> str:
    """Bijective base-26 letters: 0->a, 25->z, 26->aa ... (no digits, unique per i)."""
    out = []
    i += 1
    while i > 0:
        i, rem = divmod(i - 1, 26)
        out.append(_SLUG_LETTERS[rem])
    return "".join(reversed(out))


def _yaml_dq(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fmt_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S %z")


def _front_matter(title: str | None, date_line: str | None, categories: str, tags: str) -> str:
    lines = ["---", "layout: post"]
    if title is not None:
        lines.append(f"title: {title}")
    if date_line is not None:
        lines.append(f"date: {date_line}")
    lines.append(f"categories: {categories}")
    lines.append(f"tags: {tags}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _make_title(cat: _Cat, r: Callable[[], float]) -> str:
    titles = cat.titles
    for _ in range(20):
        t = _fill(titles[int(r() * len(titles))], r)
        if 8 <= len(t) <= 30:
            return t
    return (t + "取得积极进展")[:30]


def _soup(sentences: list[str], r: Callable[[], float]) -> str:
    inner = "".join(
        f'<span style="font-family:宋体;font-size:14px"><span class="s{int(r() * 9)}">{s}</span></span>' for s in sentences
    )
    return f'<p style="text-indent:2em;margin:0 0 10px" class="MsoNormal">{inner}&nbsp;</p>'


# Visible body text stays within 200..2000 chars (source line and snippets included).
_MAX_SENTENCE_CHARS = 1920


def _make_body(cat: _Cat, rng: random.Random) -> str:
    r = rng.random
    n_par = 3 + int(r() * 10)  # 3..12
    lo = max(200, 45 * n_par)
    target = lo + int(r() * (_MAX_SENTENCE_CHARS - 100 - lo))
    per_par = target / n_par
    sentences = cat.sentences
    nasty = r() < 0.15
    soup = r() < 0.12
    total = 0
    paras: list[str] = []
    for p in range(n_par):
        sents: list[str] = []
        plen = 0
        if p == 0:
            lead = cat.lead
            total += len(lead) - 17  # count visible chars of the lead only
        while True:
            s = _fill(sentences[int(r() * len(sentences))], r)
            if total + len(s) > _MAX_SENTENCE_CHARS and sents:
                break
            sents.append(s)
            plen += len(s)
            total += len(s)
            if plen >= per_par:
                break
        if p == 0:
            paras.append(f"<p>{cat.lead}{''.join(sents)}</p>")
        elif soup and r() < 0.5:
            paras.append(_soup(sents, r))
        elif r() < 0.08:
            # a bit of inline markup inside a normal paragraph
            mid = len(sents) // 2
            paras.append(
                "<p>"
                + "".join(sents[:mid])
                + "<strong>"
                + "".join(sents[mid : mid + 1])
                + "</strong>"
                + "".join(sents[mid + 1 :])
                + "</p>"
            )
        else:
            paras.append("<p>" + "".join(sents) + "</p>")
    if nasty:
        for _ in range(1 + int(r() * 3)):
            pos = 1 + int(r() * len(paras))
            paras.insert(pos, NASTY_SNIPPETS[int(r() * len(NASTY_SNIPPETS))])
    source = SOURCES[int(r() * len(SOURCES))]
    sep = "\n " if r() < 0.7 else "\n"
    return sep.join(paras) + f'<p class="em_media">（文章来源：{source}）</p>'


def _make_tags(cat: _Cat, rng: random.Random) -> list[str]:
    r = rng.random
    k = 1 + int(r() * r() * 4)  # 1..4, skewed to fewer tags
    tags: list[str] = []
    if r() < 0.75:
        tags.append(cat.home_tags[int(r() * r() * len(cat.home_tags))])
    while len(tags) < k:
        t = _ZIPF_TAGS[bisect.bisect(_TAG_CUM, r() * _TAG_CUM[-1])]
        if t not in tags:
            tags.append(t)
    return tags


def _make_slug(cat: _Cat, i: int, r: Callable[[], float]) -> str:
    sid = _slug_id(i)
    if r() < 0.15:
        words = [cat.objects[int(r() * len(cat.objects))].replace("“", "").replace("”", "")]
    else:
        w = cat.slug_words
        words = list(dict.fromkeys(w[int(r() * len(w))] for _ in range(1 + int(r() * 3))))
    return "-".join(words + [sid])


def make_posts(
    n: int,
    seed: int = 0,
    start: date = date(2019, 1, 1),
    end: date = date(2024, 12, 31),
) -> Iterator[SyntheticPost]:
    """Yield ``n`` synthetic posts, deterministic for ``(n, seed, start, end)``.

    Streaming: nothing but the current post is kept. Dates are spread evenly over
    ``[start, end]`` (non-decreasing with the post index) with random times of day at
    +08:00. File names ``YYYY-MM-DD-<slug>.md`` are unique within one call.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if end < start:
        raise ValueError("end must not be before start")
    rng = random.Random(seed)
    r = rng.random
    days = (end - start).days + 1
    start_dt = datetime(start.year, start.month, start.day, tzinfo=CST)
    cats = [_cat(c) for c in CATEGORIES]
    for i in range(n):
        cat = cats[bisect.bisect(_CAT_CUM, r() * _CAT_CUM[-1])]
        day = int((i + r()) * days / n) if n else 0
        day = min(day, days - 1)
        if cat.name == "xinwenlianbo" and r() < 0.7:
            secs = 19 * 3600 + int(r() * 3600)
        else:
            secs = 6 * 3600 + int(r() * 17 * 3600)
        dt = start_dt + timedelta(days=day, seconds=secs)
        title = _make_title(cat, r)
        body = _make_body(cat, rng)
        tags = _make_tags(cat, rng)
        categories = [cat.name]
        if r() < 0.08:
            other = CATEGORIES[int(r() * len(CATEGORIES))]
            if other != cat.name:
                categories.append(other)
        nav_label = f"返回{cat.display}新闻"
        if r() < 0.25:
            title = _to_traditional(title)
            body = _to_traditional(body)
            tags = [_to_traditional(t) for t in tags]
            nav_label = _to_traditional(nav_label)
        slug = _make_slug(cat, i, r)
        ymd = dt.strftime("%Y-%m-%d")
        filename = f"{ymd}-{slug}.md"
        source_url = f"http://news.example/{ymd.replace('-', '/')}/{int(r() * 0xFFFFFFFF):08x}.html"
        fm = _front_matter(_yaml_dq(title), _fmt_date(dt), " ".join(categories), " ".join(tags))
        tail = f"\n\n<{source_url}>\n\n[{nav_label}](//news.example/{cat.name}.html)｜[返回首页](//news.example/)\n"
        yield SyntheticPost(
            filename=filename,
            title=title,
            date=dt,
            categories=categories,
            tags=tags,
            body_html=body,
            source_url=source_url,
            text=fm + body + tail,
        )


# ---------------------------------------------------------------------------
# Broken / awkward variants
# ---------------------------------------------------------------------------


def _split_post(post: SyntheticPost) -> tuple[str, str]:
    """Return (front matter incl. closing '---\\n', tail after body)."""
    fm_end = post.text.index("\n---\n", 3) + 5
    tail = post.text[fm_end + len(post.body_html) :]
    return post.text[:fm_end], tail


def _variant(kind: str, post: SyntheticPost, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    """Return (file name, file bytes) of a special file derived from ``post``.

    ``count`` is how many of this kind were made before (used to rotate sub-variants).
    """
    fm, tail = _split_post(post)
    cats = " ".join(post.categories)
    tags = " ".join(post.tags)
    title = _yaml_dq(post.title)
    dline = _fmt_date(post.date)
    name = post.filename
    stem = name[:-3]

    if kind == "undecodable":
        data = post.text.encode("utf-8")
        data = data.replace(b'title: "', b'title: "\xff', 1)
        data = data.replace(b"</p>", b"\xff\xfe</p>", 2)
        return name, data
    if kind == "bad_yaml":
        v = count % 4
        if v == 0:  # plain scalar containing ': '
            bad = _front_matter(post.title.replace('"', "") + ": 详情", dline, cats, tags)
        elif v == 1:  # unterminated double quote
            bad = _front_matter('"' + post.title, dline, cats, tags)
        elif v == 2:  # unterminated flow sequence
            bad = _front_matter(title, dline, cats, "[" + ", ".join(post.tags))
        else:  # tab indentation
            bad = _front_matter(title, dline, "\n\t- " + post.categories[0], tags)
        return name, (bad + post.body_html + tail).encode("utf-8")
    if kind == "missing_title":
        return name, (_front_matter(None, dline, cats, tags) + post.body_html + tail).encode()
    if kind == "no_date":
        slug = stem[11:]
        body = post.body_html
        tail_nd = tail.replace(post.source_url, f"http://news.example/special/{slug}.html")
        return f"{slug}.md", (_front_matter(title, None, cats, tags) + body + tail_nd).encode()
    if kind == "empty_body":
        return name, (fm + ("\n", "", "\n\n   \n", "\t\n")[count % 4]).encode()
    if kind == "binary":
        size = 2048 + int(rng.random() * 14336)
        data = bytearray(rng.randbytes(size))
        for _ in range(16):
            data[int(rng.random() * size)] = 0
        data[:4] = b"\x00\xff\x00\x89"
        return name, bytes(data)
    if kind == "html_bomb":
        bomb = "<div>" * HTML_BOMB_DEPTH + "</div>" * HTML_BOMB_DEPTH + "\n"
        return name, (fm + bomb).encode()
    if kind == "oversized":
        target = BIG_OVERSIZE if big_files else SMALL_OVERSIZE
        unit = (post.body_html + "\n").encode()
        reps = target // len(unit) + 1
        return name, fm.encode() + unit * reps + tail.encode()
    if kind == "gb18030":
        return name, post.text.encode("gb18030")
    if kind == "bom":
        return name, b"\xef\xbb\xbf" + post.text.encode("utf-8")
    if kind == "duplicate":
        return f"{stem}-copy.md", post.text.encode("utf-8")
    if kind == "yaml_lists":
        if count % 2 == 0:
            c = "[" + ", ".join(post.categories) + "]"
            t = "[" + ", ".join(post.tags) + "]"
        else:
            c = "".join(f"\n  - {x}" for x in post.categories)
            t = "".join(f"\n  - {x}" for x in post.tags)
        return name, (_front_matter(title, dline, c, t) + post.body_html + tail).encode()
    if kind == "utc_date":
        utc = post.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return name, (_front_matter(title, utc, cats, tags) + post.body_html + tail).encode()
    if kind == "spaces_in_name":
        return stem[:11] + stem[11:].replace("-", " ") + ".md", post.text.encode("utf-8")
    raise ValueError(f"unknown kind {kind!r}")


def _count_files(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                else:
                    total += 1
    return total


def write_corpus(
    out_dir: Path,
    n: int,
    seed: int = 0,
    broken: float = 0.0,
    *,
    big_files: bool = False,
    shard: bool | None = None,
    allow_existing: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    """Write ``n`` posts (plus duplicates) into ``out_dir`` and return a summary.

    * ``broken``: fraction of the ``n`` posts replaced by special files, spread evenly
      over the corpus; when > 0 every kind of :data:`REJECTED_KINDS` and
      :data:`ACCEPTED_KINDS` appears at least once (if ``n`` allows). ``duplicate``
      adds an extra file next to the original instead of replacing it.
    * ``big_files``: make the ``oversized`` file 50 MB instead of 2 MB.
    * ``shard``: put files into ``YYYY/`` subfolders (``misc/`` for files without a
      date); default: only when ``n > SHARD_THRESHOLD``.
    * ``allow_existing``: by default ``out_dir`` must be empty or missing, so that the
      summary matches the folder contents.
    * other keyword arguments (``start``, ``end``) go to :func:`make_posts`.

    Only post files are written (no manifest). Summary keys:
    ``written`` files written, ``files`` files found in ``out_dir`` afterwards,
    ``broken`` {kind: count} over all special kinds, ``expected_rejected``
    {relative path: kind}, ``expected_ok`` (= written - rejected),
    ``awkward`` {relative path: kind} for accepted special files,
    ``duplicates`` {copy path: original path}, ``oversized_bytes``, ``bytes``,
    ``seconds``, ``n``, ``seed``, ``sharded``.
    """
    out_dir = Path(out_dir)
    if not 0.0 <= broken <= 1.0:
        raise ValueError("broken must be within [0, 1]")
    if out_dir.exists() and not allow_existing and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty (pass allow_existing=True)")
    out_dir.mkdir(parents=True, exist_ok=True)
    sharded = n > SHARD_THRESHOLD if shard is None else shard

    special: dict[int, str] = {}
    if broken > 0 and n > 0:
        m = min(n, max(len(_ALL_KINDS), round(broken * n)))
        for j in range(m):
            special[int((j + 0.5) * n / m)] = _ALL_KINDS[j % len(_ALL_KINDS)]

    vrng = random.Random(f"broken-{seed}")
    counts: dict[str, int] = {}
    expected_rejected: dict[str, str] = {}
    awkward: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    made_dirs: set[str] = set()
    written = 0
    nbytes = 0
    t0 = time.perf_counter()

    def put(rel_dir: str, name: str, data: bytes) -> str:
        nonlocal written, nbytes
        if rel_dir not in made_dirs:
            (out_dir / rel_dir).mkdir(parents=True, exist_ok=True)
            made_dirs.add(rel_dir)
        rel = f"{rel_dir}/{name}" if rel_dir else name
        with open(out_dir / rel, "xb") as fh:
            fh.write(data)
        written += 1
        nbytes += len(data)
        return rel

    for i, post in enumerate(make_posts(n, seed, **kw)):
        rel_dir = post.filename[:4] if sharded else ""
        kind = special.get(i)
        if kind is None:
            put(rel_dir, post.filename, post.text.encode("utf-8"))
            continue
        name, data = _variant(kind, post, counts.get(kind, 0), vrng, big_files)
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "no_date" and sharded:
            rel_dir = "misc"
        if kind == "duplicate":
            orig = put(rel_dir, post.filename, post.text.encode("utf-8"))
            rel = put(rel_dir, name, data)
            duplicates[rel] = orig
            awkward[rel] = kind
        else:
            rel = put(rel_dir, name, data)
            if kind in ACCEPTED_KINDS:
                awkward[rel] = kind
            else:
                expected_rejected[rel] = kind

    return {
        "n": n,
        "seed": seed,
        "written": written,
        "files": _count_files(out_dir),
        "broken": counts,
        "expected_rejected": expected_rejected,
        "expected_ok": written - len(expected_rejected),
        "awkward": awkward,
        "duplicates": duplicates,
        "oversized_bytes": BIG_OVERSIZE if big_files else SMALL_OVERSIZE,
        "sharded": sharded,
        "bytes": nbytes,
        "seconds": round(time.perf_counter() - t0, 3),
    }


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m synthetic",
        description="Write a synthetic corpus of Chinese news posts (Jekyll format).",
    )
    ap.add_argument("out_dir", type=Path, help="output folder (must be empty or missing)")
    ap.add_argument("-n", type=int, default=1000, help="number of posts (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--broken", type=float, default=0.0, help="fraction of posts replaced by broken/awkward files (default 0)")
    ap.add_argument("--big-files", action="store_true", help="make the oversized file 50 MB instead of 2 MB")
    ap.add_argument(
        "--start", type=date.fromisoformat, default=date(2019, 1, 1), help="first date, YYYY-MM-DD (default 2019-01-01)"
    )
    ap.add_argument(
        "--end", type=date.fromisoformat, default=date(2024, 12, 31), help="last date, YYYY-MM-DD (default 2024-12-31)"
    )
    shard = ap.add_mutually_exclusive_group()
    shard.add_argument("--shard", dest="shard", action="store_true", default=None, help="force YYYY/ subfolders")
    shard.add_argument("--no-shard", dest="shard", action="store_false", help="force a flat folder")
    args = ap.parse_args(argv)
    try:
        summary = write_corpus(
            args.out_dir,
            args.n,
            seed=args.seed,
            broken=args.broken,
            big_files=args.big_files,
            shard=args.shard,
            start=args.start,
            end=args.end,
        )
    except (FileExistsError, ValueError) as exc:
        ap.error(str(exc))
    json.dump(summary, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0
