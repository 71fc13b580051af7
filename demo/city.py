"""The demo city's fixed cast: merchants with their districts and addresses, the card plans each
trade sells, the names consumers are drawn from and the words of complaints and answers.

Everything here is invented. Licence numbers are made in ``demo.history`` with the real
check character (GB 32100-2015), so the merchants register through the same validation as anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

# District code → (neighbourhood, street) pairs a shop's address is drawn from.
STREETS: dict[str, tuple[tuple[str, str], ...]] = {
    "110101": (
        ("东直门", "东直门内大街"),
        ("王府井", "王府井大街"),
        ("崇文门", "崇文门外大街"),
        ("鼓楼", "鼓楼东大街"),
    ),
    "110102": (("西单", "西单北大街"), ("金融街", "金融大街"), ("德胜门", "德胜门外大街")),
    "110105": (("望京", "阜通东大街"), ("三里屯", "三里屯路"), ("国贸", "建国门外大街"), ("双井", "广渠路")),
    "110106": (("方庄", "蒲芳路"), ("丽泽", "丽泽路"), ("草桥", "草桥东路")),
    "110107": (("鲁谷", "鲁谷路"), ("八角", "八角西街")),
    "110108": (("中关村", "中关村大街"), ("五道口", "成府路"), ("公主坟", "复兴路")),
    "110109": (("大峪", "新桥大街"), ("龙泉", "龙泉路")),
    "110111": (("良乡", "拱辰大街"), ("长阳", "长政南街")),
    "110112": (("梨园", "九棵树东路"), ("北苑", "新华大街")),
    "110113": (("后沙峪", "安华街"), ("石园", "府前街")),
    "110114": (("回龙观", "回龙观西大街"), ("天通苑", "立汤路")),
    "110115": (("黄村", "兴华大街"), ("亦庄", "荣华中路")),
    "110116": (("泉河", "青春路"), ("雁栖", "雁栖大街")),
    "110117": (("滨河", "平谷大街"), ("兴谷", "府前街")),
    "110118": (("鼓楼", "鼓楼南大街"), ("果园", "新北路")),
    "110119": (("儒林", "妫水北街"), ("百泉", "东外大街")),
}

ADDRESS_TAILS = ("1层", "B1层", "2层201室", "底商", "3号楼1层", "东侧底商", "商业楼2层")


@dataclass(frozen=True)
class Shop:
    brand: str
    category: str
    trade: str  # the menu it sells from (PLANS)
    district: str  # GB/T 2260 code
    street: int  # index into STREETS[district]
    individual: bool = False  # an individual business (个体工商户): licence code type 92, not 91


# The demo merchant comes first; the runaways are named in RUNAWAYS below.
SHOPS: tuple[Shop, ...] = (
    Shop("阳光健身", "fitness", "gym", "110105", 0),
    Shop("力健健身", "fitness", "gym", "110108", 0),
    Shop("炫动健身", "fitness", "gym", "110105", 2),
    Shop("动感单车馆", "fitness", "gym", "110102", 0),
    Shop("悦动瑜伽", "fitness", "gym", "110101", 0),
    Shop("青山攀岩馆", "fitness", "gym", "110107", 0),
    Shop("力美健身", "fitness", "gym", "110114", 0),
    Shop("飞鱼游泳馆", "fitness", "gym", "110112", 0),
    Shop("雁栖健身工作室", "fitness", "gym", "110116", 1),
    Shop("夏都滑雪训练营", "fitness", "gym", "110119", 1),
    Shop("悦容美容会所", "beauty", "beauty", "110105", 1),
    Shop("丽人美发沙龙", "beauty", "beauty", "110102", 1),
    Shop("清颜皮肤管理", "beauty", "beauty", "110101", 1),
    Shop("型色造型", "beauty", "beauty", "110108", 1, individual=True),
    Shop("指尖美甲", "beauty", "beauty", "110115", 0, individual=True),
    Shop("美丽时光美容会所", "beauty", "beauty", "110108", 2),
    Shop("发艺坊", "beauty", "beauty", "110111", 0, individual=True),
    Shop("馨怡养生美容", "beauty", "beauty", "110117", 0),
    Shop("启航英语", "education", "school", "110108", 0),
    Shop("小天才编程", "education", "school", "110115", 1),
    Shop("墨香书法", "education", "school", "110102", 2),
    Shop("音悦钢琴", "education", "school", "110114", 1),
    Shop("思维数学", "education", "school", "110112", 1),
    Shop("博学少儿英语", "education", "school", "110106", 0),
    Shop("童画美术", "education", "school", "110113", 1),
    Shop("跃龙武术", "education", "school", "110109", 0),
    Shop("老北京炸酱面馆", "catering", "restaurant", "110101", 2, individual=True),
    Shop("和记茶餐厅", "catering", "restaurant", "110105", 0),
    Shop("鲜果时光", "catering", "restaurant", "110107", 1, individual=True),
    Shop("京味烤鸭", "catering", "restaurant", "110106", 1),
    Shop("妫水人家农家菜", "catering", "restaurant", "110119", 0, individual=True),
    Shop("果园烘焙坊", "catering", "restaurant", "110118", 1),
    Shop("长阳包子铺", "catering", "restaurant", "110111", 1, individual=True),
    Shop("胡同咖啡", "catering", "restaurant", "110101", 3),
    Shop("洁净洗衣", "laundry", "laundry", "110106", 2),
    Shop("衣之家干洗", "laundry", "laundry", "110114", 0, individual=True),
    Shop("净衣坊", "laundry", "laundry", "110113", 0, individual=True),
    Shop("快洁洗衣", "laundry", "laundry", "110109", 1, individual=True),
    Shop("福奈干洗", "laundry", "laundry", "110116", 0),
    Shop("洁丽雅洗衣", "laundry", "laundry", "110117", 1),
    Shop("衣点洁", "laundry", "laundry", "110112", 0),
    Shop("宠爱宠物美容", "other", "pet", "110108", 1),
    Shop("悠然足疗", "other", "massage", "110105", 3),
    Shop("安心家政", "other", "housekeeping", "110102", 0),
    Shop("光影摄影", "other", "photo", "110118", 0),
    Shop("爱车洗车", "other", "carwash", "110115", 1, individual=True),
    Shop("星辰台球俱乐部", "other", "billiards", "110107", 0),
)

DEMO_SHOP = "阳光健身"
# Three merchants that run the pattern which precedes a runaway, each with its discount blitz.
RUNAWAYS = ("炫动健身", "美丽时光美容会所", "博学少儿英语")
CLOSING_SHOP = "福奈干洗"  # announced its closure lawfully a few days ago


def _yuan_in_name(fen: int) -> str:
    """Whole yuan as a card's name writes them ("2000"), with jiao or fen only if any."""
    return str(fen // 100) if fen % 100 == 0 else f"{fen / 100:.2f}".rstrip("0")


@dataclass(frozen=True)
class Plan:
    name: str  # a template: "{price}", "{face}" and "{bonus}" (face − price) are filled in yuan by ``title``
    kind: str
    price: int  # fen
    face_value: int | None = None
    unit_price: int | None = None
    sessions: int | None = None
    days: int | None = None
    refund_fee_bps: int = 0

    def title(self) -> str:
        """The product's name, its amounts written from its own terms ("充2000送200" is sold for ¥2,000
        and holds ¥2,200), so that a plan repriced for a merchant never contradicts its name."""
        face = self.face_value or 0
        return self.name.format(
            price=_yuan_in_name(self.price), face=_yuan_in_name(face), bonus=_yuan_in_name(face - self.price)
        )


def _sv(name: str, price: int, face_value: int, unit_price: int, fee: int = 0) -> Plan:
    return Plan(name, "stored_value", price, face_value=face_value, unit_price=unit_price, refund_fee_bps=fee)


def _sp(name: str, price: int, sessions: int, fee: int = 0) -> Plan:
    return Plan(name, "session_pack", price, sessions=sessions, refund_fee_bps=fee)


def _pp(name: str, price: int, days: int, fee: int = 0) -> Plan:
    return Plan(name, "period_pass", price, days=days, refund_fee_bps=fee)


# What each trade sells. Prices are within the national cap (¥5,000) and education plans within
# 60 class hours and 92 days; a merchant's prices are these scaled by its own price level.
PLANS: dict[str, tuple[Plan, ...]] = {
    "gym": (
        _sv("储值卡 充{price}送{bonus}", 200_000, 220_000, 8_800, fee=500),
        _sp("私教课 12节", 360_000, 12, fee=1000),
        _pp("季卡 90天", 159_900, 90, fee=800),
    ),
    "beauty": (
        _sv("会员储值卡 充{price}送{bonus}", 100_000, 120_000, 6_800, fee=500),
        _sp("面部护理疗程 10次", 268_000, 10, fee=1000),
        _sp("洗剪吹 12次卡", 57_600, 12),
    ),
    "school": (
        _sp("春季班 48课时", 384_000, 48, fee=1000),
        _sp("一对一辅导 20课时", 400_000, 20, fee=1000),
        _pp("寒暑假集训 30天", 198_000, 30, fee=500),
    ),
    "restaurant": (
        _sv("储值卡 充{price}送{bonus}", 50_000, 55_000, 2_800),
        _sp("工作日午餐 20次", 56_000, 20),
        _pp("早餐月卡 30天", 29_900, 30),
    ),
    "laundry": (
        _sv("洗衣储值卡 充{price}送{bonus}", 30_000, 36_000, 1_500),
        _sp("干洗 10件卡", 28_000, 10),
    ),
    "pet": (
        _sp("宠物洗护 10次", 128_000, 10, fee=500),
        _sv("宠物储值卡 充{price}送{bonus}", 100_000, 110_000, 6_800, fee=500),
    ),
    "massage": (
        _sv("足疗储值卡 充{price}送{bonus}", 200_000, 230_000, 12_800, fee=500),
        _sp("足疗 10次", 158_000, 10, fee=500),
    ),
    "housekeeping": (_sp("日常保洁 10次", 150_000, 10, fee=500),),
    "photo": (_sv("写真储值卡 充{price}送{bonus}", 300_000, 350_000, 39_900, fee=1000),),
    "carwash": (
        _pp("洗车月卡 30天", 19_900, 30),
        _sp("精洗 10次", 39_800, 10),
    ),
    "billiards": (
        _sv("台球储值卡 充{price}送{bonus}", 50_000, 60_000, 3_000),
        _pp("畅打季卡 90天", 99_900, 90),
    ),
}

# The blitz each runaway launches 30 days before today: stored value at half its face value, with
# the highest refund fee the rules allow.
BLITZ_PLANS: dict[str, Plan] = {
    "炫动健身": _sv("周年庆 充{price}得{face}", 100_000, 200_000, 8_800, fee=2000),
    "美丽时光美容会所": _sv("限时五折 充{price}得{face}", 150_000, 300_000, 6_800, fee=2000),
    "博学少儿英语": _sv("学费卡 充{price}抵{face}", 200_000, 400_000, 15_000, fee=2000),
}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
_TWO_CHARACTER_NAMES = (
    "秀英秀兰桂英浩然子涵欣怡梓萱宇轩思远雨桐一诺佳怡俊杰晓东建国海燕雪梅志强晨曦嘉怡博文诗涵晓峰婷婷文静天宇"
)
GIVEN_NAMES = (
    *"伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚鹏琳悦倩",
    *(_TWO_CHARACTER_NAMES[n : n + 2] for n in range(0, len(_TWO_CHARACTER_NAMES), 2)),
)

# The words of complaints, by the merchant's category (its trade) and the complaint's category: a
# gym's members write about coaches and classes, a laundry's customers about clothes. ``GENERIC``
# holds words that fit any trade, for a pair with no words of its own (``complaint_texts``).
GENERIC = "generic"
COMPLAINT_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    GENERIC: {
        "service_quality": (
            "服务态度差，和办卡时承诺的不一样。",
            "每次都要排很久，预约的时间也不准时。",
        ),
        "refund_refused": (
            "要求退卡，商家以各种理由拖延不办理。",
            "冷静期内申请退款，店员说要扣手续费。",
            "剩余余额想退，商家说储值卡一律不退。",
        ),
        "contract_terms": (
            "合同里写着“最终解释权归本店所有”，条款不公平。",
            "办卡时没有告知有效期，现在说已经过期。",
        ),
        "service_unavailable": (
            "门店这两周一直关门，电话也打不通。",
            "到店发现卷帘门拉着，门上贴着装修通知，已经半个月了。",
        ),
        "closure": (
            "听说老板要跑路了，卡里还有两千多没用。",
            "门店突然搬空，会员群也解散了。",
        ),
        "misleading_sales": (
            "店员推销“充一千得两千”，说名额有限逼着当场付款。",
            "宣传单上的五折活动，付款后说要另加服务费。",
        ),
    },
    "fitness": {
        "service_quality": (
            "教练经常迟到，课程时间被压缩。",
            "私教课上教练一直看手机，动作也不纠正。",
            "器械坏了一个多月没人修，淋浴间也没有热水。",
        ),
        "refund_refused": (
            "搬家了想退健身卡，前台说要扣一半费用。",
            "私教课还剩8节没上，要求退款被拒绝。",
        ),
        "contract_terms": (
            "合同写着私教课过期作废，办卡时教练没说。",
            "季卡合同写着冻结要另收费，办卡时没有告知。",
        ),
        "service_unavailable": (
            "健身房这两周一直关门，教练电话也打不通。",
            "团课全部取消了，私教也约不上，前台说在装修。",
            "到店发现器械都被搬走了，门上贴着暂停营业。",
        ),
        "closure": (
            "听说健身房老板要跑路了，卡里还有两千多没用。",
            "健身房突然搬空，会员群也解散了。",
        ),
        "misleading_sales": (
            "会籍顾问推销“充一千得两千”，说名额有限逼着当场付款。",
            "办卡时承诺私教随时可约，办完后一直约不上。",
        ),
    },
    "beauty": {
        "service_quality": (
            "护理做得很敷衍，皮肤还过敏了。",
            "剪的发型和说好的完全不一样，要求修剪被拒绝。",
            "每次护理都在推销产品，不买就态度很差。",
        ),
        "refund_refused": (
            "护理疗程还剩6次，想退款商家说疗程卡不退。",
            "美容卡余额想退，店长说只能换成产品。",
        ),
        "contract_terms": (
            "合同里写着疗程过期作废，办卡时美容师没说。",
            "合同写着“最终解释权归本店所有”，条款不公平。",
        ),
        "service_unavailable": (
            "美容院这两周一直关门，美容师电话也打不通。",
            "预约护理一直约不上，前台说美容师都离职了。",
        ),
        "closure": (
            "听说美容院要关门了，卡里还有三千多没用。",
            "美容会所突然搬空，会员群也解散了。",
        ),
        "misleading_sales": (
            "美容师推销“限时五折”，说今天不办就没了，逼着当场付款。",
            "说好的护理项目做的时候要另外加钱。",
        ),
    },
    "education": {
        "service_quality": (
            "老师经常换人，孩子跟不上进度。",
            "课堂上老师管不住纪律，孩子说什么也没学到。",
            "说好小班教学，实际一个班二十多个孩子。",
        ),
        "refund_refused": (
            "孩子不想学了，剩下的课时要求退费被拒绝。",
            "冷静期内申请退学费，机构说教材费和报名费不退。",
        ),
        "contract_terms": (
            "合同写着课时过期作废，报名时顾问没说。",
            "合同里写着“学费概不退还”，条款不公平。",
        ),
        "service_unavailable": (
            "老师全部离职，课程停了也没有通知。",
            "校区这两周一直关门，班主任电话也打不通。",
            "网上说改成线上课，但一直没有排课。",
        ),
        "closure": (
            "听说培训机构要跑路了，孩子的学费卡里还有三千多。",
            "校区突然搬空，家长群也解散了。",
        ),
        "misleading_sales": (
            "课程顾问推销“充两千抵四千”，说名额有限逼着当场交费。",
            "报名时承诺外教上课，实际一直是中教。",
        ),
    },
    "catering": {
        "service_quality": (
            "菜量越来越少，口味也和以前不一样了。",
            "在店里吃饭吃出了头发，服务员态度还很差。",
        ),
        "refund_refused": (
            "储值卡里还有三百多，想退商家说只能吃完。",
            "午餐次卡还剩10次，要求退款被拒绝。",
        ),
        "contract_terms": (
            "储值卡用餐要另收服务费，办卡时没有告知。",
            "办卡时没说储值卡不能点套餐，现在说只能点单品。",
        ),
    },
    "laundry": {
        "service_quality": (
            "衣服洗完有污渍没洗掉，要求重洗被拒绝。",
            "羊毛大衣干洗后缩水了，店家不认。",
            "送洗的衬衫丢了一件，店里说找不到。",
        ),
        "refund_refused": (
            "洗衣卡余额想退，店家说储值卡一律不退。",
            "干洗次卡还剩6件，要求退款被拒绝。",
        ),
        "contract_terms": (
            "洗衣卡写着羽绒服另外加价，办卡时没有告知。",
            "单据上写着“衣物损坏最多赔十倍洗费”，条款不公平。",
        ),
    },
}


def complaint_texts(category: str, complaint_category: str) -> tuple[str, ...]:
    """The words a complaint of ``complaint_category`` about a merchant of ``category`` is drawn from."""
    return COMPLAINT_TEXTS.get(category, {}).get(complaint_category) or COMPLAINT_TEXTS[GENERIC][complaint_category]


RESPONSES = (
    "您好，已与您电话沟通，我们会安排店长跟进处理，给您带来不便深表歉意。",
    "已核实情况，本周内为您补上课程，并赠送一次服务作为补偿。",
    "退款已按合同约定办理，请留意平台退款通知。",
    "感谢反馈，已对相关员工进行培训，欢迎您再次到店体验。",
)

RESOLUTIONS = (
    "经调解，双方达成一致，商家已补偿消费者。",
    "商家已按规定办理退款，投诉人表示满意。",
    "经核实，商家已整改，结案。",
)
